#include "worker/tasks/task_failure.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

TEST(TaskFailureTest, IncarnationChangedCarriesItsReason) {
  absl::Status s = IncarnationChangedError("node r0 was 7, now 9");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "incarnation changed: node r0 was 7, now 9");
  EXPECT_EQ(TaskFailureOf(s), v1::TASK_FAILURE_INCARNATION_CHANGED);
}

TEST(TaskFailureTest, TheTextAloneIsNoReason) {
  // The coordinator acts on the reason, never on a message that merely reads alike.
  EXPECT_EQ(TaskFailureOf(absl::FailedPreconditionError("incarnation changed: node r0")),
            v1::TASK_FAILURE_UNSPECIFIED);
  EXPECT_EQ(TaskFailureOf(absl::UnavailableError("r0: connection refused")),
            v1::TASK_FAILURE_UNSPECIFIED);
  EXPECT_EQ(TaskFailureOf(absl::OkStatus()), v1::TASK_FAILURE_UNSPECIFIED);
}

}  // namespace
}  // namespace miroir
