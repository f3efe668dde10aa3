// Task retries (coordinator/cluster_state.h): a retryable failure is leased
// again after a doubling backoff, and only a failure that is not retryable or
// past migration.task_retries counts as final for the move, reshard or pass.
#include <gtest/gtest.h>

#include "coordinator/cluster_state.h"

namespace miroir::coordinator {
namespace {

TEST(TaskRetry, BackoffDoublesFrom100MsUpTo5s) {
  EXPECT_EQ(TaskRecord::RetryDelayMs(1), 100);
  EXPECT_EQ(TaskRecord::RetryDelayMs(2), 200);
  EXPECT_EQ(TaskRecord::RetryDelayMs(3), 400);
  EXPECT_EQ(TaskRecord::RetryDelayMs(6), 3200);
  EXPECT_EQ(TaskRecord::RetryDelayMs(7), 5000);
  EXPECT_EQ(TaskRecord::RetryDelayMs(1000), 5000);
}

TEST(TaskRetry, OnlyANonRetryableOrExhaustedFailureIsFinal) {
  TaskRecord t;
  t.status = TaskRecord::Status::kFailed;
  t.retryable = true;
  t.failures = 5;
  EXPECT_FALSE(t.FailedForGood(5));  // within the budget: leased again after its backoff
  t.failures = 6;
  EXPECT_TRUE(t.FailedForGood(5));
  t.failures = 1;
  t.retryable = false;
  EXPECT_TRUE(t.FailedForGood(5));
  t.status = TaskRecord::Status::kLeased;
  EXPECT_FALSE(t.FailedForGood(5));
}

}  // namespace
}  // namespace miroir::coordinator
