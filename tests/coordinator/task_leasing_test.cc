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

namespace v1 = ::miroir::v1;

v1::Task TaskOf(v1::TaskKind kind) {
  v1::Task t;
  t.set_kind(kind);
  return t;
}

TEST(TaskLeasing, WipesCleanupsAndPurgingPassesAreDestructive) {
  EXPECT_TRUE(IsDestructiveTask(TaskOf(v1::TASK_PREPARE)));
  EXPECT_TRUE(IsDestructiveTask(TaskOf(v1::TASK_CLEANUP)));
  v1::Task ae = TaskOf(v1::TASK_AE_PASS);
  ae.set_repair(true);
  EXPECT_FALSE(IsDestructiveTask(ae));  // no tombstone GC
  ae.set_purge_tombstones_before_ms(1000);
  EXPECT_TRUE(IsDestructiveTask(ae));
  ae.set_repair(false);  // report-only passes purge nothing
  EXPECT_FALSE(IsDestructiveTask(ae));
  for (v1::TaskKind k : {v1::TASK_BACKFILL, v1::TASK_CATCH_UP, v1::TASK_FENCE, v1::TASK_FINAL_DELTA,
                         v1::TASK_RECONCILE}) {
    EXPECT_FALSE(IsDestructiveTask(TaskOf(k))) << v1::TaskKind_Name(k);
  }
}

TEST(TaskLeasing, ADestructiveTaskCarriesThePublishedEpochOnItsFirstLease) {
  EXPECT_EQ(EpochForLease(/*task_epoch=*/5, /*published=*/7, false, true, false),
            (LeaseEpoch{7, false}));
  // Never above the published epoch, even when created with a higher one.
  EXPECT_EQ(EpochForLease(9, 7, false, true, false), (LeaseEpoch{7, false}));
}

TEST(TaskLeasing, AReLeasedDestructiveTaskCarriesAnEpochCommittedAfterItsLastLease) {
  // Nothing committed since the last lease (at 7): this lease publishes 8.
  EXPECT_EQ(EpochForLease(7, 7, false, true, true), (LeaseEpoch{8, true}));
  // An epoch was committed since: it will do, nothing new is published.
  EXPECT_EQ(EpochForLease(7, 9, false, true, true), (LeaseEpoch{9, false}));
}

TEST(TaskLeasing, OtherTasksKeepAtLeastThePublishedEpochAndCutoverTasksTheirOwn) {
  EXPECT_EQ(EpochForLease(7, 7, false, false, true), (LeaseEpoch{7, false}));
  EXPECT_EQ(EpochForLease(5, 7, false, false, true), (LeaseEpoch{7, false}));
  EXPECT_EQ(EpochForLease(8, 7, /*fixed=*/true, false, true), (LeaseEpoch{8, false}));
}

}  // namespace
}  // namespace miroir::coordinator
