// TaskRunner: reports complete/failed with the lease generation, stops silently
// on a refused checkpoint, ignores a duplicate lease.
#include "worker/tasks/task_runner.h"

#include <gtest/gtest.h>

#include "harness/redis_node.h"
#include "harness/temp_dir.h"
#include "tests/worker/view_builder.h"
#include "worker/stores/redis_store.h"

namespace miroir {
namespace {

class TaskRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* id : {"a", "t"}) {
      auto n = testing::RedisNode::Start(dir_.Subdir(id));
      ASSERT_TRUE(n.ok()) << n.status();
      addresses_[id] = (*n)->address();
      nodes_.push_back(std::move(*n));
    }
    router_.Apply(testing::MakeView(1, addresses_, "products", 4, 1, {{"g0", {"a"}}}));
    auto a = RedisStore::Create(addresses_["a"], StoreOptions{});
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE((*a)->Apply(ShardKey{"products", 1, 1}, 1,
                              {Mutation{"k" + std::to_string(i), Version{5, 1}, false, "{}", 0}})
                      .ok());
    }
  }
  v1::Task Backfill(uint64_t lease) {
    v1::Task t;
    t.set_id(11);
    t.set_kind(v1::TASK_BACKFILL);
    t.set_lease_generation(lease);
    t.set_epoch(2);
    t.set_index("products");
    t.set_generation(1);
    t.set_shards(4);
    t.set_shard(1);
    t.add_sources("a");
    t.add_targets("t");
    t.set_batch_size(5);
    return t;
  }
  bool WaitFor(std::function<bool()> pred) {
    for (int i = 0; i < 1000; ++i) {
      if (pred()) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
  std::vector<v1::WorkerMessage> Sent() {
    absl::MutexLock l(&mu_);
    return sent_;
  }

  testing::TempDir dir_{"task-runner"};
  std::vector<std::unique_ptr<testing::RedisNode>> nodes_;
  std::map<std::string, std::string> addresses_;
  Router router_;
  NodeStores stores_{StoreOptions{}};
  // A runner whose messages land in sent_.
  std::unique_ptr<TaskRunner> MakeRunner(absl::Duration checkpoint_interval) {
    return std::make_unique<TaskRunner>(
        &router_, &stores_,
        [this](const v1::WorkerMessage& m) {
          absl::MutexLock l(&mu_);
          sent_.push_back(m);
          return true;
        },
        checkpoint_interval);
  }

  absl::Mutex mu_;
  std::vector<v1::WorkerMessage> sent_;
  std::unique_ptr<TaskRunner> runner_ptr_ = MakeRunner(absl::ZeroDuration());  // every checkpoint
  TaskRunner& runner_ = *runner_ptr_;
};

TEST_F(TaskRunnerTest, CompletesWithProgressAndLeaseGeneration) {
  runner_.OnTask(Backfill(3));
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& m : Sent()) {
      if (m.has_complete()) return true;
    }
    return false;
  }));
  int progress = 0;
  for (const auto& m : Sent()) {
    if (m.has_progress()) {
      ++progress;
      EXPECT_EQ(m.progress().lease_generation(), 3u);
    }
    if (m.has_complete()) {
      EXPECT_EQ(m.complete().task_id(), 11u);
      EXPECT_EQ(m.complete().lease_generation(), 3u);
      EXPECT_EQ(m.complete().result().documents(), 50u);
    }
  }
  EXPECT_GE(progress, 11);  // W, then one per page of 5
  EXPECT_EQ(runner_.documents_copied(), 50u);
}

// Checkpoints after the first (which carries W) are sent at most once per
// interval: each one is a commit at the coordinator.
TEST_F(TaskRunnerTest, CheckpointsAfterTheFirstAreSentAtMostOncePerInterval) {
  auto runner = MakeRunner(absl::Hours(1));
  runner->OnTask(Backfill(3));
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& m : Sent()) {
      if (m.has_complete()) return true;
    }
    return false;
  }));
  std::vector<v1::Checkpoint> checkpoints;
  for (const auto& m : Sent()) {
    if (m.has_progress()) checkpoints.push_back(m.progress().checkpoint());
    if (m.has_complete()) {
      EXPECT_EQ(m.complete().result().documents(), 50u);
    }
  }
  // Ten pages of 5, one checkpoint: the first, with W and no cursor yet.
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_FALSE(checkpoints[0].watermarks().empty());
  EXPECT_EQ(checkpoints[0].cursor(), "");
}

// While a cutover holds writes on one of its nodes, a backfill stops between pages
// (the fence of that cutover does not wait); the next view lets it finish.
TEST_F(TaskRunnerTest, BulkPagesWaitWhileACutoverHoldsWritesOnTheirNodes) {
  v1::ClusterView paused = testing::MakeView(2, addresses_, "products", 4, 1, {{"g0", {"a"}}});
  v1::ShardRoute* r = paused.mutable_generations(0)->mutable_routes(3);
  r->set_state(v1::SHARD_PAUSED);  // shard 3 moves a -> t
  testing::FillGroups({{"g0", {"a", "t"}}}, r->mutable_write_set());
  ASSERT_TRUE(router_.Apply(paused));
  const absl::Time started = absl::Now();
  runner_.OnTask(Backfill(1));
  v1::Task fence;
  fence.set_id(12);
  fence.set_kind(v1::TASK_FENCE);
  fence.set_lease_generation(1);
  fence.set_epoch(2);
  fence.set_index("products");
  fence.set_generation(1);
  fence.set_shards(4);
  fence.set_shard(3);
  fence.add_targets("a");
  fence.add_targets("t");
  runner_.OnTask(fence);
  auto completed = [&](uint64_t id) {
    for (const auto& m : Sent()) {
      if (m.has_complete() && m.complete().task_id() == id) return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return completed(12); }));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(completed(11));
  // One page of 5, then a wait (of at most kMaxCutoverYield per page); unyielding,
  // all 10 pages take a few ms.
  EXPECT_LT(runner_.documents_copied(), 50u);

  ASSERT_TRUE(router_.Apply(testing::MakeView(3, addresses_, "products", 4, 1, {{"g0", {"a"}}})));
  ASSERT_TRUE(WaitFor([&] { return completed(11); }));
  EXPECT_EQ(runner_.documents_copied(), 50u);
  // The wait is counted (how long it was depends on when the first page ended).
  EXPECT_GT(runner_.cutover_yield(), absl::ZeroDuration());
  EXPECT_LE(runner_.cutover_yield(), absl::Now() - started);
}

TEST_F(TaskRunnerTest, RefusedCheckpointStopsTheTaskSilently) {
  v1::Task t = Backfill(1);
  t.set_throttle_docs_per_s(20);  // slow enough to be stopped mid-way
  runner_.OnTask(t);
  ASSERT_TRUE(WaitFor([&] { return Sent().size() >= 2; }));
  runner_.OnCheckpointAck(11, /*lease_generation=*/1, /*accepted=*/false);
  ASSERT_TRUE(WaitFor([&] { return runner_.running() == 0; }));
  for (const auto& m : Sent()) {
    EXPECT_FALSE(m.has_complete());
    EXPECT_FALSE(m.has_failed());
  }
}

// A coordinator restart re-leases a running task (generation 2) while run 1's
// last checkpoint is still answered: that refusal names run 1 and must not stop
// run 2 (it did, and the move waited forever for a task no one ran).
TEST_F(TaskRunnerTest, ARefusalOfAnOlderRunDoesNotStopTheNewerLease) {
  v1::Task t = Backfill(1);
  t.set_throttle_docs_per_s(20);
  runner_.OnTask(t);
  ASSERT_TRUE(WaitFor([&] { return Sent().size() >= 2; }));
  v1::Task again = Backfill(2);
  again.set_throttle_docs_per_s(100);  // runs ~0.5 s: the refusal lands while it runs
  runner_.OnTask(again);
  runner_.OnCheckpointAck(11, /*lease_generation=*/1, /*accepted=*/false);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& m : Sent()) {
      if (m.has_complete() && m.complete().lease_generation() == 2) return true;
    }
    return false;
  })) << "run 2 was stopped by run 1's refusal";
}

TEST_F(TaskRunnerTest, FailureIsReportedRetryableWhenANodeIsDown) {
  ASSERT_TRUE(nodes_[0]->Kill().ok());
  runner_.OnTask(Backfill(1));
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& m : Sent()) {
      if (m.has_failed()) return true;
    }
    return false;
  }));
  for (const auto& m : Sent()) {
    if (m.has_failed()) {
      EXPECT_TRUE(m.failed().retryable());
      EXPECT_NE(m.failed().error().find("a:"), std::string::npos) << m.failed().error();
    }
  }
}

}  // namespace
}  // namespace miroir
