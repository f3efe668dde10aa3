// The pending read exclusions are derived from the recovery passes in the task
// set (every target), whatever their status, and nothing else.
#include "coordinator/read_exclusions.h"

#include <gtest/gtest.h>

namespace miroir::coordinator {
namespace {

TaskRecord Task(uint64_t id, v1::TaskKind kind, uint64_t move, std::vector<std::string> targets,
                uint32_t shard, TaskRecord::Status status = TaskRecord::Status::kPending) {
  TaskRecord r;
  r.task.set_id(id);
  r.task.set_kind(kind);
  r.task.set_move_id(move);
  r.task.set_index("products");
  r.task.set_generation(7);
  r.task.set_shard(shard);
  for (const auto& t : targets) r.task.add_targets(t);
  r.status = status;
  return r;
}

TEST(ReadExclusions, EveryRecoveryPassTargetAndNothingElse) {
  std::map<uint64_t, TaskRecord> tasks;
  tasks[1] = Task(1, v1::TASK_RECONCILE, 0, {"r2"}, 3);
  tasks[2] = Task(2, v1::TASK_RECONCILE, 0, {"r0"}, 1, TaskRecord::Status::kLeased);
  tasks[3] = Task(3, v1::TASK_RECONCILE, 0, {"r0"}, 1, TaskRecord::Status::kFailed);  // same key
  tasks[4] = Task(4, v1::TASK_RECONCILE, 9, {"r5"}, 1);        // serves a move
  tasks[5] = Task(5, v1::TASK_AE_PASS, 0, {"r6"}, 1);          // anti-entropy
  tasks[6] = Task(6, v1::TASK_RECONCILE, 0, {"r7", "r8"}, 1);  // every target
  auto list = PendingReadExclusions(tasks);
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0].node(), "r0");
  EXPECT_EQ(list[0].shard(), 1u);
  EXPECT_EQ(list[0].generation(), 7u);
  EXPECT_EQ(list[0].index(), "products");
  EXPECT_EQ(list[1].node(), "r2");
  EXPECT_EQ(list[1].shard(), 3u);
  EXPECT_EQ(list[2].node(), "r7");
  EXPECT_EQ(list[3].node(), "r8");

  v1::ReadExclusions held;
  for (const auto& e : list) *held.add_exclusions() = e;
  EXPECT_TRUE(SameReadExclusions(held.exclusions(), list));
  tasks.erase(1);
  EXPECT_FALSE(SameReadExclusions(held.exclusions(), PendingReadExclusions(tasks)));
}

}  // namespace
}  // namespace miroir::coordinator
