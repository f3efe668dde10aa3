// The pure bookkeeping of verify operations (coordinator/verify_ops.h): how
// finished, failed, vanished and late tasks settle into verdicts, and how an
// operation ends done, did_not_finish or failed. "Divergent" (the owners
// disagree) and "did not finish" (nothing known) are never mixed up.
#include "coordinator/verify_ops.h"

#include <gtest/gtest.h>

namespace miroir::coordinator {
namespace {

TaskRecord Task(uint64_t id, uint32_t shard) {
  TaskRecord t;
  t.task.set_id(id);
  t.task.set_kind(v1::TASK_VERIFY);
  t.task.set_shard(shard);
  t.task.add_sources("r0");
  t.task.add_sources("r2");
  t.task.set_verify_id(1);
  return t;
}

void Digests(TaskRecord* t, uint64_t docs_a, const std::string& digest_a, uint64_t docs_b,
             const std::string& digest_b) {
  t->status = TaskRecord::Status::kDone;
  auto* a = t->result.add_digests();
  a->set_node("r0");
  a->set_documents(docs_a);
  a->set_digest(digest_a);
  auto* b = t->result.add_digests();
  b->set_node("r2");
  b->set_documents(docs_b);
  b->set_digest(digest_b);
}

v1::VerifyOperation Op(std::vector<uint64_t> tasks, int64_t deadline_ms = 10'000) {
  v1::VerifyOperation op;
  op.set_id(1);
  op.set_index("products");
  op.set_generation(3);
  op.set_state(kVerifyRunning);
  op.set_deadline_ms(deadline_ms);
  op.set_total(static_cast<uint32_t>(tasks.size()));
  for (uint64_t t : tasks) op.add_task_ids(t);
  return op;
}

TEST(VerifyOps, RunningUntilEveryTaskSettlesThenDoneWithTheDivergentShards) {
  std::map<uint64_t, TaskRecord> tasks;
  tasks[10] = Task(10, 0);
  tasks[11] = Task(11, 1);
  tasks[12] = Task(12, 2);
  Digests(&tasks[10], 5, "aa", 5, "aa");
  tasks[11].status = TaskRecord::Status::kLeased;
  tasks[11].worker = "w1";
  Digests(&tasks[12], 5, "aa", 4, "bb");
  tasks[12].result.set_mismatches(1);
  tasks[12].result.add_divergent_keys("k:1");
  v1::VerifyOperation op = Op({10, 11, 12});

  auto deleted = AdvanceVerify(&op, tasks, 3, 1000, true);
  EXPECT_EQ(deleted, (std::vector<uint64_t>{10, 12}));
  EXPECT_EQ(op.state(), kVerifyRunning);
  EXPECT_EQ(op.done(), 2u);
  EXPECT_EQ(op.divergent(), 1u);
  EXPECT_EQ(op.divergent_keys(), 1u);
  EXPECT_EQ(op.task_ids_size(), 1);
  EXPECT_EQ(op.finished_ms(), 0);

  tasks.erase(10);
  tasks.erase(12);
  Digests(&tasks[11], 7, "cc", 7, "cc");
  deleted = AdvanceVerify(&op, tasks, 3, 2000, true);
  EXPECT_EQ(deleted, (std::vector<uint64_t>{11}));
  EXPECT_EQ(op.state(), kVerifyDone);
  EXPECT_EQ(op.finished_ms(), 2000);
  EXPECT_EQ(op.divergent(), 1u);
  EXPECT_EQ(op.unfinished(), 0u);
  ASSERT_EQ(op.shards_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(op.shards(i).shard(), static_cast<uint32_t>(i));  // by shard
    EXPECT_TRUE(op.shards(i).finished());
    EXPECT_EQ(op.shards(i).consistent(), i != 2);
  }
  EXPECT_EQ(op.shards(2).divergent_keys(0), "k:1");
  // Ended: left as is.
  v1::VerifyOperation copy = op;
  EXPECT_TRUE(AdvanceVerify(&op, tasks, 3, 3000, true).empty());
  EXPECT_EQ(op.SerializeAsString(), copy.SerializeAsString());
  // The one-call answer counts divergent shards only.
  EXPECT_EQ(VerifyResponseOf(op).divergent(), 1u);
}

TEST(VerifyOps, ATaskFailedForGoodIsDidNotFinishNotDivergent) {
  std::map<uint64_t, TaskRecord> tasks;
  tasks[10] = Task(10, 0);
  tasks[11] = Task(11, 1);
  Digests(&tasks[10], 5, "aa", 5, "aa");
  tasks[11].status = TaskRecord::Status::kFailed;
  tasks[11].retryable = true;
  tasks[11].failures = 2;  // retries left: still running
  tasks[11].error = "node r2: connect: Connection refused";
  v1::VerifyOperation op = Op({10, 11});
  AdvanceVerify(&op, tasks, 3, 1000, true);
  EXPECT_EQ(op.state(), kVerifyRunning);
  tasks.erase(10);
  tasks[11].failures = 4;  // out of retries
  EXPECT_EQ(AdvanceVerify(&op, tasks, 3, 1100, true), (std::vector<uint64_t>{11}));
  EXPECT_EQ(op.state(), kVerifyDidNotFinish);
  EXPECT_EQ(op.divergent(), 0u);
  EXPECT_EQ(op.unfinished(), 1u);
  ASSERT_EQ(op.shards_size(), 2);
  EXPECT_FALSE(op.shards(1).finished());
  EXPECT_EQ(op.shards(1).error(), "node r2: connect: Connection refused");
  EXPECT_NE(op.message().find("1 shard(s) were not compared"), std::string::npos);
}

TEST(VerifyOps, TheDeadlineSettlesEveryShardLeftAsNotFinished) {
  std::map<uint64_t, TaskRecord> tasks;
  tasks[10] = Task(10, 0);
  tasks[11] = Task(11, 1);
  tasks[10].status = TaskRecord::Status::kLeased;
  tasks[10].worker = "w1";
  v1::VerifyOperation op = Op({10, 11}, /*deadline_ms=*/5000);
  EXPECT_TRUE(AdvanceVerify(&op, tasks, 3, 4999, true).empty());
  EXPECT_EQ(op.state(), kVerifyRunning);
  EXPECT_EQ(AdvanceVerify(&op, tasks, 3, 5000, true), (std::vector<uint64_t>{10, 11}));
  EXPECT_EQ(op.state(), kVerifyDidNotFinish);
  EXPECT_EQ(op.unfinished(), 2u);
  EXPECT_EQ(op.divergent(), 0u);
  EXPECT_EQ(op.task_ids_size(), 0);
  EXPECT_NE(op.shards(0).error().find("held by worker w1"), std::string::npos);
  EXPECT_NE(op.shards(1).error().find("timeout passed"), std::string::npos);
}

TEST(VerifyOps, AGoneGenerationFailsTheOperation) {
  std::map<uint64_t, TaskRecord> tasks;
  tasks[10] = Task(10, 0);
  v1::VerifyOperation op = Op({10});
  EXPECT_EQ(AdvanceVerify(&op, tasks, 3, 100, false), (std::vector<uint64_t>{10}));
  EXPECT_EQ(op.state(), kVerifyFailed);
  EXPECT_NE(op.message().find("generation 3 is gone"), std::string::npos);
}

TEST(VerifyOps, AVanishedTaskIsNotFinished) {
  std::map<uint64_t, TaskRecord> tasks;
  v1::VerifyOperation op = Op({10});
  EXPECT_TRUE(AdvanceVerify(&op, tasks, 3, 100, true).empty());
  EXPECT_EQ(op.state(), kVerifyDidNotFinish);
  EXPECT_EQ(op.unfinished(), 1u);
}

TEST(VerifyOps, PlanTaskSaysWhatAMoveWaitsFor) {
  TaskRecord t = Task(10, 4);
  t.task.set_kind(v1::TASK_CATCH_UP);
  t.task.set_move_id(3);
  t.task.set_index("products");
  t.task.set_lease_generation(5);
  t.status = TaskRecord::Status::kLeased;
  t.worker = "w2";
  t.failures = 2;
  t.error = "fenced";
  v1::PlanTask p = PlanTaskOf(t);
  EXPECT_EQ(p.kind(), "catch_up");
  EXPECT_EQ(p.state(), "leased");
  EXPECT_EQ(p.worker(), "w2");
  EXPECT_EQ(p.attempts(), 5u);
  EXPECT_EQ(p.failures(), 2u);
  EXPECT_EQ(p.last_error(), "fenced");
  EXPECT_EQ(p.move_id(), 3u);
  EXPECT_EQ(p.shard(), 4u);
  t.status = TaskRecord::Status::kPending;
  EXPECT_EQ(PlanTaskOf(t).state(), "retrying");
}

}  // namespace
}  // namespace miroir::coordinator
