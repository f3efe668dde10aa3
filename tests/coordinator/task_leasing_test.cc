#include "coordinator/task_leasing.h"

#include <gtest/gtest.h>

namespace miroir::coordinator {
namespace {

TEST(TaskLeasing, OrdinaryTasksFillFreeSlotsMostFreeFirst) {
  auto got = ChooseLeases({{1, false, {}}, {2, false, {}}, {3, false, {}}, {4, false, {}}},
                          {{"w1", 2}, {"w2", 1}});
  ASSERT_EQ(got.size(), 3u);  // 3 slots, 4 tasks: the last waits
  EXPECT_EQ(got[0], (LeaseChoice{1, "w1"}));
  EXPECT_EQ(got[1], (LeaseChoice{2, "w1"}));  // w1 1 left, w2 1 left: first id wins
  EXPECT_EQ(got[2], (LeaseChoice{3, "w2"}));
}

TEST(TaskLeasing, ACutoverTaskIsLeasedAtOnceWhenEveryWorkerIsFull) {
  // Both workers busy with backfills; a FENCE of a paused move and another backfill wait.
  auto got = ChooseLeases({{7, false, {}}, {9, true, {}}}, {{"w1", 0}, {"w2", 0}});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task, 9u);
}

TEST(TaskLeasing, CutoverTasksGoFirstAndTakeNoOrdinarySlotTheyDoNotNeed) {
  // One free slot: the cutover task takes it (it is considered first), and the
  // backfill with a lower id still waits — the slot count is shared.
  auto got = ChooseLeases({{3, false, {}}, {5, true, {}}}, {{"w1", 1}});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], (LeaseChoice{5, "w1"}));
  // Spread over workers by free slots, overcommitted evenly.
  got = ChooseLeases({{1, true, {}}, {2, true, {}}, {3, true, {}}}, {{"w1", 0}, {"w2", -1}});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].worker, "w1");
  EXPECT_EQ(got[1].worker, "w1");  // w1 -1, w2 -1: first id
  EXPECT_EQ(got[2].worker, "w2");
}

TEST(TaskLeasing, CutoverOvercommitIsBounded) {
  std::vector<PendingTask> many;
  for (uint64_t i = 1; i <= 10; ++i) many.push_back({i, true, {}});
  auto got = ChooseLeases(many, {{"w1", 0}}, {}, /*cutover_slots=*/4);
  EXPECT_EQ(got.size(), 4u);
  EXPECT_TRUE(ChooseLeases(many, {}).empty());  // no connected worker
}

TEST(TaskLeasing, NoOtherTaskIsLeasedOntoANodeWhileOneOfItsShardsIsCutOver) {
  // r1 holds a shard being cut over: the backfill into r1 and the reconciliation
  // reading r1 wait; the one on r2/r3 and the cutover's own FENCE on r1 go now.
  std::vector<PendingTask> pending = {{1, false, {"r0", "r1"}},
                                      {2, false, {"r2", "r3"}},
                                      {3, false, {"r1"}},
                                      {4, true, {"r0", "r1"}}};
  auto got = ChooseLeases(pending, {{"w1", 4}}, {"r1"});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].task, 4u);
  EXPECT_EQ(got[1].task, 2u);
  // Once the cutover is over, they are leased.
  got = ChooseLeases({pending[0], pending[2]}, {{"w1", 4}}, {});
  EXPECT_EQ(got.size(), 2u);
}

}  // namespace
}  // namespace miroir::coordinator
