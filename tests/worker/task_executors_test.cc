// Task executors against real redis-server nodes (docs/task-protocol.md).
#include "worker/tasks/task_executors.h"

#include <gtest/gtest.h>

#include <map>

#include "harness/redis_node.h"
#include "harness/temp_dir.h"
#include "worker/stores/redis_store.h"
#include "worker/tasks/task_failure.h"

namespace miroir {
namespace {

using testing::RedisNode;
using testing::TempDir;

class TaskExecutorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* id : {"a", "b", "t"}) {
      auto n = RedisNode::Start(dir_.Subdir(id));
      ASSERT_TRUE(n.ok()) << n.status();
      StoreOptions so;
      so.op_timeout_ms = 500;
      so.connect_timeout_ms = 300;
      stores_[id] = std::shared_ptr<StoreAdapter>(*RedisStore::Create((*n)->address(), so));
      nodes_[id] = std::move(*n);
    }
  }

  void Put(const std::string& node, const std::string& pk, uint64_t hlc, const std::string& body,
           bool tomb = false) {
    auto r = stores_[node]->Apply(shard_, 1, {Mutation{pk, Version{hlc, 1}, tomb, body, 0}});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  absl::StatusOr<StoredDoc> Get(const std::string& node, const std::string& pk) {
    return stores_[node]->Get(shard_, kAnyEpoch, pk);
  }

  v1::Task MakeTask(v1::TaskKind kind, std::vector<std::string> sources,
                    std::vector<std::string> targets) {
    v1::Task t;
    t.set_id(1);
    t.set_kind(kind);
    t.set_lease_generation(1);
    t.set_epoch(2);
    t.set_index(shard_.index);
    t.set_generation(shard_.generation);
    t.set_shards(4);
    t.set_shard(shard_.shard);
    for (auto& s : sources) t.add_sources(s);
    for (auto& s : targets) t.add_targets(s);
    t.set_batch_size(2);
    return t;
  }

  absl::StatusOr<v1::TaskResult> Run(const v1::Task& task, int stop_after_checkpoints = -1) {
    TaskContext ctx;
    ctx.task = task;
    ctx.store = [this](const std::string& id) -> absl::StatusOr<std::shared_ptr<StoreAdapter>> {
      auto it = stores_.find(id);
      if (it == stores_.end()) return absl::NotFoundError("node: unknown " + id);
      return it->second;
    };
    checkpoints_.clear();
    ctx.checkpoint = [this, stop_after_checkpoints](const v1::Checkpoint& cp) {
      checkpoints_.push_back(cp);
      return stop_after_checkpoints < 0 ||
             static_cast<int>(checkpoints_.size()) < stop_after_checkpoints;
    };
    ctx.cancelled = [] { return false; };
    return RunTask(ctx);
  }

  TempDir dir_{"tasks"};
  std::map<std::string, std::unique_ptr<RedisNode>> nodes_;
  std::map<std::string, std::shared_ptr<StoreAdapter>> stores_;
  std::vector<v1::Checkpoint> checkpoints_;
  ShardKey shard_{"products", 1, 2};
};

TEST_F(TaskExecutorsTest, BackfillMergesByVersionFromEverySourceIncludingTombstones) {
  Put("a", "k1", 20, R"({"v":"a-new"})");
  Put("b", "k1", 10, R"({"v":"b-old"})");
  Put("a", "k2", 5, R"({"v":2})");
  Put("b", "k3", 50, "", /*tomb=*/true);
  Put("a", "k3", 40, R"({"v":"deleted-later"})");
  Put("b", "k4", 1, R"({"v":4})");
  auto res = Run(MakeTask(v1::TASK_BACKFILL, {"a", "b"}, {"t"}));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), 4u);
  ASSERT_EQ(res->watermarks_size(), 2);
  EXPECT_EQ(res->watermarks(0).node(), "a");
  EXPECT_EQ(res->watermarks(0).seq(), 3u);
  EXPECT_EQ(Get("t", "k1")->body, R"({"v":"a-new"})");
  EXPECT_EQ(Get("t", "k2")->version.hlc, 5u);
  EXPECT_TRUE(Get("t", "k3")->tombstone);
  EXPECT_EQ(Get("t", "k4")->body, R"({"v":4})");
  // The first checkpoint carries W before any copy.
  ASSERT_FALSE(checkpoints_.empty());
  EXPECT_EQ(checkpoints_[0].watermarks_size(), 2);
  EXPECT_EQ(checkpoints_[0].documents(), 0u);
}

TEST_F(TaskExecutorsTest, BackfillResumesFromItsCheckpoint) {
  for (int i = 0; i < 7; ++i) Put("a", "k" + std::to_string(i), 10, "{}");
  v1::Task task = MakeTask(v1::TASK_BACKFILL, {"a"}, {"t"});
  auto stopped = Run(task, /*stop_after_checkpoints=*/2);  // W, then one page
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled);
  v1::Checkpoint cp = checkpoints_.back();
  EXPECT_EQ(cp.documents(), 2u);
  EXPECT_EQ(cp.cursor(), "k1");
  *task.mutable_checkpoint() = cp;
  task.set_lease_generation(2);
  auto res = Run(task);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(Get("t", "k" + std::to_string(i)).ok()) << i;
}

TEST_F(TaskExecutorsTest, CatchUpCopiesOnlyChangesSinceWAndAdvancesIt) {
  Put("a", "k1", 10, "{}");
  Put("a", "k2", 10, "{}");
  auto bf = Run(MakeTask(v1::TASK_BACKFILL, {"a"}, {"t"}));
  ASSERT_TRUE(bf.ok());
  Put("a", "k2", 20, R"({"changed":true})");
  Put("a", "k3", 20, "", true);
  v1::Task cu = MakeTask(v1::TASK_CATCH_UP, {"a"}, {"t"});
  *cu.mutable_checkpoint()->mutable_watermarks() = bf->watermarks();
  auto res = Run(cu);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->remaining(), 2u);
  EXPECT_EQ(res->watermarks(0).seq(), 4u);
  EXPECT_EQ(Get("t", "k2")->body, R"({"changed":true})");
  EXPECT_TRUE(Get("t", "k3")->tombstone);
  // A second pass with nothing new copies nothing.
  *cu.mutable_checkpoint()->mutable_watermarks() = res->watermarks();
  res = Run(cu);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->remaining(), 0u);
}

TEST_F(TaskExecutorsTest, CatchUpFailsWhenTheSourceIncarnationChanged) {
  Put("a", "k1", 10, "{}");
  auto bf = Run(MakeTask(v1::TASK_BACKFILL, {"a"}, {"t"}));
  ASSERT_TRUE(bf.ok());
  ASSERT_TRUE(nodes_["a"]->WipeRestart().ok());
  v1::Task cu = MakeTask(v1::TASK_CATCH_UP, {"a"}, {"t"});
  *cu.mutable_checkpoint()->mutable_watermarks() = bf->watermarks();
  absl::StatusOr<v1::TaskResult> res = Run(cu);
  for (int i = 0; i < 3 && res.status().code() == absl::StatusCode::kUnavailable; ++i)
    res = Run(cu);
  EXPECT_EQ(res.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(res.status().message()).rfind("incarnation changed:", 0), 0u)
      << res.status();
  EXPECT_EQ(TaskFailureOf(res.status()), v1::TASK_FAILURE_INCARNATION_CHANGED) << res.status();
}

TEST_F(TaskExecutorsTest, FenceReportsSeqPerNodeAndListsUnreachable) {
  Put("a", "k1", 10, "{}");
  ASSERT_TRUE(nodes_["b"]->Kill().ok());
  auto res = Run(MakeTask(v1::TASK_FENCE, {}, {"a", "b"}));
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_EQ(res->watermarks_size(), 1);
  EXPECT_EQ(res->watermarks(0).node(), "a");
  EXPECT_EQ(res->watermarks(0).seq(), 1u);
  EXPECT_EQ(std::vector<std::string>(res->unreachable().begin(), res->unreachable().end()),
            std::vector<std::string>{"b"});
  EXPECT_EQ(*stores_["a"]->GetFence(shard_), 2u);
  // A write at the old epoch is now refused on a.
  auto r = stores_["a"]->Apply(shard_, 1, {Mutation{"k9", Version{99, 1}, false, "{}", 0}});
  EXPECT_EQ((*r)[0].outcome, ApplyOutcome::kFenced);
}

TEST_F(TaskExecutorsTest, FinalDeltaCopiesExactlyWToF) {
  Put("a", "k1", 10, "{}");  // seq 1 = W
  auto w = stores_["a"]->CurrentSeq(shard_);
  Put("a", "k2", 10, "{}");  // seq 2
  Put("a", "k3", 10, "{}");  // seq 3 = F
  auto f = stores_["a"]->SetFence(shard_, 2);
  ASSERT_TRUE(f.ok());
  Put("a", "k4", 10, "{}");  // after F (epoch 1 < fence: refused anyway)
  v1::Task fd = MakeTask(v1::TASK_FINAL_DELTA, {"a"}, {"t"});
  auto* wm = fd.mutable_checkpoint()->add_watermarks();
  wm->set_node("a");
  wm->set_incarnation(w->incarnation);
  wm->set_seq(w->seq);
  auto* up = fd.add_upto();
  up->set_node("a");
  up->set_incarnation(f->incarnation);
  up->set_seq(f->seq);
  auto res = Run(fd);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), 2u);
  EXPECT_EQ(Get("t", "k1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Get("t", "k2").ok());
  EXPECT_TRUE(Get("t", "k3").ok());
}

TEST_F(TaskExecutorsTest, PrepareAndCleanupFenceThenWipe) {
  Put("t", "leftover", 10, "{}");
  auto res = Run(MakeTask(v1::TASK_PREPARE, {}, {"t"}));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(Get("t", "leftover").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*stores_["t"]->GetFence(shard_), 2u);
  v1::Task stale = MakeTask(v1::TASK_CLEANUP, {}, {"t"});
  stale.set_epoch(1);
  EXPECT_EQ(Run(stale).status().code(), absl::StatusCode::kFailedPrecondition);
}

// DESIGN §6 "Node rejoin": a rejoin's prepare fences the rejoining node, copies
// what changed there after its sync point by version into the current owners
// (tombstones included; an older entry loses to the owners' newer one), then
// wipes it. Entries at or before the sync point are not copied.
TEST_F(TaskExecutorsTest, RescueCopiesWhatChangedAfterTheSyncPointBeforeTheWipe) {
  Put("t", "synced", 10, R"({"v":"synced"})");  // seq 1 = the sync point
  auto sync = stores_["t"]->CurrentSeq(shard_);
  ASSERT_TRUE(sync.ok()) << sync.status();
  Put("t", "only-t", 20, R"({"v":"only-t"})");      // acked by t alone
  Put("t", "deleted-on-t", 21, "", /*tomb=*/true);  // a delete only t saw
  Put("a", "deleted-on-t", 15, R"({"v":"old"})");
  Put("t", "older-on-t", 11, R"({"v":"old"})");  // the owners have it newer
  Put("a", "older-on-t", 30, R"({"v":"new"})");
  v1::Task prep = MakeTask(v1::TASK_PREPARE, {}, {"t"});
  prep.mutable_rescue_from()->set_node("t");
  prep.mutable_rescue_from()->set_incarnation(sync->incarnation);
  prep.mutable_rescue_from()->set_seq(sync->seq);
  prep.add_rescue_into("a");
  prep.add_rescue_into("b");
  auto res = Run(prep);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), 3u);
  for (const char* owner : {"a", "b"}) {
    auto only = Get(owner, "only-t");
    ASSERT_TRUE(only.ok()) << owner << ": " << only.status();
    EXPECT_EQ(only->body, R"({"v":"only-t"})");
    auto del = Get(owner, "deleted-on-t");
    ASSERT_TRUE(del.ok()) << owner << ": " << del.status();
    EXPECT_TRUE(del->tombstone) << owner;
    EXPECT_EQ(Get(owner, "synced").status().code(), absl::StatusCode::kNotFound) << owner;
  }
  EXPECT_EQ(Get("a", "older-on-t")->body, R"({"v":"new"})");
  EXPECT_EQ(Get("t", "only-t").status().code(), absl::StatusCode::kNotFound);  // wiped after
}

TEST_F(TaskExecutorsTest, RescueCopiesNothingUnderAnotherIncarnation) {
  Put("t", "k", 20, "{}");
  v1::Task prep = MakeTask(v1::TASK_PREPARE, {}, {"t"});
  prep.mutable_rescue_from()->set_node("t");
  prep.mutable_rescue_from()->set_incarnation("an-earlier-incarnation");
  prep.add_rescue_into("a");
  auto res = Run(prep);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), 0u);
  EXPECT_EQ(Get("a", "k").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Get("t", "k").status().code(), absl::StatusCode::kNotFound);
}

// DESIGN §6: the backfill raises J's fence from the prepare epoch E0 to its own
// (E1) before copying, so a stale holder of the prepare task, resuming after
// the copy, is refused by the node instead of wiping what was copied.
TEST_F(TaskExecutorsTest, BackfillFencesTargetsSoAStalePrepareCannotWipeTheCopy) {
  v1::Task prepare = MakeTask(v1::TASK_PREPARE, {}, {"t"});
  prepare.set_epoch(2);
  ASSERT_TRUE(Run(prepare).ok());
  for (int i = 0; i < 5; ++i) Put("a", "k" + std::to_string(i), 10, "{}");
  v1::Task backfill = MakeTask(v1::TASK_BACKFILL, {"a"}, {"t"});
  backfill.set_epoch(3);
  ASSERT_TRUE(Run(backfill).ok());
  EXPECT_EQ(*stores_["t"]->GetFence(shard_), 3u);
  auto stale = Run(prepare);  // the earlier holder of the prepare, resumed
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition) << stale.status();
  EXPECT_EQ(stores_["t"]->Stats(shard_)->documents, 5u);
}

// A purging anti-entropy pass leased again raises every replica's fence to its
// (newer) epoch before anything else, so the earlier holder's purge is refused;
// a first lease leaves the fences alone.
TEST_F(TaskExecutorsTest, AReLeasedPurgingAePassFencesItsReplicasFirst) {
  Put("a", "k1", 10, "", /*tomb=*/true);
  Put("b", "k1", 10, "", /*tomb=*/true);
  v1::Task pass = MakeTask(v1::TASK_AE_PASS, {"a", "b"}, {});
  pass.set_repair(true);
  pass.set_purge_tombstones_before_ms(int64_t{1} << 50);
  pass.set_epoch(5);
  auto first = Run(pass);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*stores_["a"]->GetFence(shard_), 0u);
  // Each replica's position at the pass start: the coordinator's sync points.
  ASSERT_EQ(first->watermarks_size(), 2);
  EXPECT_EQ(first->watermarks(0).node(), "a");
  EXPECT_EQ(first->watermarks(0).seq(), 1u);
  EXPECT_EQ(first->watermarks(0).incarnation(), *stores_["a"]->Incarnation());
  pass.set_lease_generation(2);
  pass.set_epoch(6);
  ASSERT_TRUE(Run(pass).ok());
  EXPECT_EQ(*stores_["a"]->GetFence(shard_), 6u);
  EXPECT_EQ(*stores_["b"]->GetFence(shard_), 6u);
  pass.set_lease_generation(1);
  pass.set_epoch(5);  // the stale holder: refused by the fenced replicas
  EXPECT_EQ(Run(pass).status().code(), absl::StatusCode::kFailedPrecondition);
}

// DESIGN §6, "A joining node's incarnation": prepare returns the fence reply
// (with the incarnation) of each joining node; a cleanup that names the joining
// nodes re-reads them by a fence first and deletes nothing on the leaving node
// when one restarted empty since; a final delta re-reads them once copied.
TEST_F(TaskExecutorsTest, PrepareReportsTheIncarnationAndCleanupChecksItBeforeDeleting) {
  auto prep = Run(MakeTask(v1::TASK_PREPARE, {}, {"t"}));
  ASSERT_TRUE(prep.ok()) << prep.status();
  ASSERT_EQ(prep->watermarks_size(), 1);
  EXPECT_EQ(prep->watermarks(0).node(), "t");
  const std::string first = prep->watermarks(0).incarnation();
  EXPECT_EQ(first, *stores_["t"]->Incarnation());

  Put("a", "k1", 10, "{}");  // the leaving owner's copy
  v1::Task cleanup = MakeTask(v1::TASK_CLEANUP, {}, {"a"});
  auto* j = cleanup.add_joining();
  j->set_node("t");
  j->set_incarnation(first);
  ASSERT_TRUE(nodes_["t"]->WipeRestart().ok());
  absl::StatusOr<v1::TaskResult> res = Run(cleanup);
  for (int i = 0; i < 3 && res.status().code() == absl::StatusCode::kUnavailable; ++i) {
    res = Run(cleanup);
  }
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_EQ(res->joining_size(), 1);
  EXPECT_EQ(res->joining(0).node(), "t");
  EXPECT_NE(res->joining(0).incarnation(), first);
  EXPECT_EQ(res->watermarks_size(), 0);            // no leaving node was touched
  EXPECT_TRUE(Get("a", "k1").ok());                // nothing deleted
  EXPECT_EQ(*stores_["t"]->GetFence(shard_), 2u);  // the re-read is a fence at the task's epoch

  // With the incarnation it has now, the cleanup deletes.
  j->set_incarnation(res->joining(0).incarnation());
  res = Run(cleanup);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->joining(0).incarnation(), j->incarnation());
  EXPECT_EQ(Get("a", "k1").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TaskExecutorsTest, FinalDeltaReReadsTheJoiningNodesOnceCopied) {
  Put("a", "k1", 10, "{}");
  auto w = stores_["a"]->CurrentSeq(shard_);
  Put("a", "k2", 10, "{}");
  auto f = stores_["a"]->SetFence(shard_, 2);
  ASSERT_TRUE(f.ok());
  v1::Task fd = MakeTask(v1::TASK_FINAL_DELTA, {"a"}, {"t"});
  auto* wm = fd.mutable_checkpoint()->add_watermarks();
  wm->set_node("a");
  wm->set_incarnation(w->incarnation);
  wm->set_seq(w->seq);
  auto* up = fd.add_upto();
  up->set_node("a");
  up->set_incarnation(f->incarnation);
  up->set_seq(f->seq);
  auto* j = fd.add_joining();
  j->set_node("t");
  j->set_incarnation("recorded-at-prepare");
  auto res = Run(fd);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), 1u);
  ASSERT_EQ(res->joining_size(), 1);
  EXPECT_EQ(res->joining(0).incarnation(), *stores_["t"]->Incarnation());
  EXPECT_EQ(*stores_["t"]->GetFence(shard_), 2u);
}

TEST_F(TaskExecutorsTest, ReconcileRepairsTargetsToTheNewestVersion) {
  Put("a", "k1", 20, R"({"v":"new"})");
  Put("b", "k1", 10, R"({"v":"old"})");
  Put("b", "k2", 30, "", true);
  Put("a", "k2", 25, R"({"v":"resurrect?"})");
  Put("a", "k3", 5, "{}");
  v1::Task verify = MakeTask(v1::TASK_VERIFY, {"a", "b"}, {});
  auto before = Run(verify);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->mismatches(), 3u);
  EXPECT_NE(before->digests(0).digest(), before->digests(1).digest());
  EXPECT_EQ(Get("b", "k1")->body, R"({"v":"old"})") << "verify never repairs";

  v1::Task rec = MakeTask(v1::TASK_RECONCILE, {"a", "b"}, {"a", "b"});
  rec.set_repair(true);
  auto res = Run(rec);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->mismatches(), 3u);
  EXPECT_EQ(res->documents(), 3u);  // b:k1, a:k2, b:k3
  EXPECT_EQ(Get("b", "k1")->body, R"({"v":"new"})");
  EXPECT_TRUE(Get("a", "k2")->tombstone) << "a tombstone beats an older put";
  auto after = Run(verify);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->mismatches(), 0u);
  EXPECT_EQ(after->digests(0).digest(), after->digests(1).digest());
  EXPECT_EQ(after->digests(0).documents(), 2u);
  EXPECT_EQ(after->digests(0).tombstones(), 1u);
}

TEST_F(TaskExecutorsTest, UnreachableSourceFailsRetryable) {
  ASSERT_TRUE(nodes_["a"]->Kill().ok());
  auto res = Run(MakeTask(v1::TASK_BACKFILL, {"a"}, {"t"}));
  EXPECT_EQ(res.status().code(), absl::StatusCode::kUnavailable) << res.status();
}

}  // namespace
}  // namespace miroir
