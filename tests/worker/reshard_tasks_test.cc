// Resharding task executors against real redis-server nodes
// (docs/task-protocol.md "Resharding tasks"). Both generations live on the same
// six nodes, two groups of three, RF 2, as they do in a cluster.
#include "worker/tasks/reshard_tasks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "common/route_sets.h"
#include "common/routing.h"
#include "harness/redis_node.h"
#include "harness/temp_dir.h"
#include "worker/stores/redis_store.h"
#include "worker/tasks/task_executors.h"
#include "worker/tasks/task_failure.h"

namespace miroir {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::RedisNode;
using ::testing::StartsWith;
using testing::TempDir;

constexpr char kIndex[] = "products";
constexpr uint64_t kSourceGen = 1;
constexpr uint64_t kTargetGen = 2;

// (node, target shard, pk) -> what it holds.
using Holdings = std::map<std::tuple<std::string, uint32_t, std::string>, StoredDoc>;

class ReshardTasksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* id : {"a", "b", "c", "d", "e", "f"}) {
      auto n = RedisNode::Start(dir_.Subdir(id));
      ASSERT_TRUE(n.ok()) << n.status();
      StoreOptions so;
      so.op_timeout_ms = 500;
      so.connect_timeout_ms = 300;
      stores_[id] = std::shared_ptr<StoreAdapter>(*RedisStore::Create((*n)->address(), so));
      nodes_[id] = std::move(*n);
    }
  }

  static v1::GenerationRoute MakeRoute(uint64_t generation, uint32_t shards) {
    const std::vector<GroupNodes> groups = {{"g1", {"a", "b", "c"}}, {"g2", {"d", "e", "f"}}};
    v1::GenerationRoute g;
    g.set_index(kIndex);
    g.set_generation(generation);
    g.set_shards(shards);
    g.set_rf(2);
    g.set_role(generation == kSourceGen ? v1::GENERATION_LIVE : v1::GENERATION_SHADOW);
    for (uint32_t s = 0; s < shards; ++s) {
      auto* r = g.add_routes();
      r->set_shard(s);
      r->set_state(v1::SHARD_STABLE);
      r->set_sets_are_owners(true);
      for (const auto& a : AssignShard(s, groups, 2)) {
        auto* o = r->add_owners();
        o->set_group(a.group);
        for (const auto& n : a.owners) o->add_nodes(n);
      }
    }
    return g;
  }

  // Writes one entry into every owner of its shard of `route` (or only `only`).
  void PutIn(const v1::GenerationRoute& route, const std::string& pk, uint64_t hlc,
             const std::string& body, bool tomb = false, const std::string& only = "",
             uint64_t epoch = 1) {
    const uint32_t s = ShardForKey(pk, route.shards());
    for (const auto& n : RouteNodes(route.routes(static_cast<int>(s)), RouteSet::kOwners)) {
      if (!only.empty() && n != only) continue;
      auto r = stores_[n]->Apply(ShardKey{kIndex, route.generation(), s}, epoch,
                                 {Mutation{pk, Version{hlc, 7}, tomb, body, 0}});
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ((*r)[0].outcome, ApplyOutcome::kApplied) << n << " " << pk;
    }
  }

  // What every node holds of the target generation, every shard.
  Holdings ScanTarget(const v1::GenerationRoute& target) {
    Holdings out;
    for (const auto& [id, store] : stores_) {
      for (uint32_t s = 0; s < target.shards(); ++s) {
        auto docs = store->Scan(ShardKey{kIndex, target.generation(), s}, kAnyEpoch, "", 10000);
        EXPECT_TRUE(docs.ok()) << docs.status();
        if (!docs.ok()) continue;
        for (const auto& d : *docs) out[{id, s, d.pk}] = d;
      }
    }
    return out;
  }

  // What the target must hold: each entry on every write-set node of its shard.
  static Holdings Expected(const v1::GenerationRoute& target,
                           const std::map<std::string, StoredDoc>& newest) {
    Holdings out;
    for (const auto& [pk, d] : newest) {
      const uint32_t s = ShardForKey(pk, target.shards());
      for (const auto& n : RouteNodes(target.routes(static_cast<int>(s)), RouteSet::kWriteSet)) {
        out[{n, s, pk}] = d;
      }
    }
    return out;
  }

  static void ExpectSameHoldings(const Holdings& got, const Holdings& want) {
    std::set<std::tuple<std::string, uint32_t, std::string>> got_keys, want_keys;
    for (const auto& [k, d] : got) got_keys.insert(k);
    for (const auto& [k, d] : want) want_keys.insert(k);
    ASSERT_EQ(got_keys, want_keys);
    for (const auto& [k, d] : want) {
      const StoredDoc& g = got.at(k);
      EXPECT_EQ(g.version, d.version) << std::get<2>(k) << " on " << std::get<0>(k);
      EXPECT_EQ(g.tombstone, d.tombstone) << std::get<2>(k);
      EXPECT_EQ(g.body, d.body) << std::get<2>(k);
    }
  }

  // The shards of `route` that `node` owns, in shard order.
  static std::vector<uint32_t> ShardsOf(const std::string& node, const v1::GenerationRoute& route) {
    std::vector<uint32_t> out;
    for (uint32_t s = 0; s < route.shards(); ++s) {
      const auto owners = RouteNodes(route.routes(static_cast<int>(s)), RouteSet::kOwners);
      if (std::find(owners.begin(), owners.end(), node) != owners.end()) out.push_back(s);
    }
    return out;
  }

  static std::vector<std::string> KeysOfShard(uint32_t shard, uint32_t shards, int n = 200) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
      std::string pk = "key-" + std::to_string(i);
      if (ShardForKey(pk, shards) == shard) out.push_back(pk);
    }
    return out;
  }

  v1::Task CopyTask(v1::TaskKind kind, const v1::GenerationRoute& source, uint32_t shard,
                    const v1::GenerationRoute& target) {
    v1::Task t;
    t.set_id(1);
    t.set_kind(kind);
    t.set_lease_generation(1);
    t.set_epoch(2);
    t.set_index(kIndex);
    t.set_generation(source.generation());
    t.set_shards(source.shards());
    t.set_shard(shard);
    for (const auto& n : RouteNodes(source.routes(static_cast<int>(shard)), RouteSet::kOwners)) {
      t.add_sources(n);
    }
    *t.mutable_target_route() = target;
    t.set_batch_size(3);
    return t;
  }

  v1::Task VerifyTask(const v1::GenerationRoute& source, const v1::GenerationRoute& target) {
    v1::Task t;
    t.set_id(2);
    t.set_kind(v1::TASK_RESHARD_VERIFY);
    t.set_lease_generation(1);
    t.set_epoch(2);
    t.set_index(kIndex);
    *t.mutable_source_route() = source;
    *t.mutable_target_route() = target;
    t.set_ae_buckets(16);
    t.set_batch_size(7);
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

  // RESHARD_BACKFILL of every source shard.
  void BackfillAll(const v1::GenerationRoute& source, const v1::GenerationRoute& target) {
    for (uint32_t s = 0; s < source.shards(); ++s) {
      auto res = Run(CopyTask(v1::TASK_RESHARD_BACKFILL, source, s, target));
      ASSERT_TRUE(res.ok()) << "shard " << s << ": " << res.status();
    }
  }

  StoredDoc Doc(const std::string& pk, uint64_t hlc, const std::string& body, bool tomb = false) {
    StoredDoc d;
    d.pk = pk;
    d.version = Version{hlc, 7};
    d.tombstone = tomb;
    d.body = tomb ? "" : body;
    return d;
  }

  TempDir dir_{"reshard"};
  std::map<std::string, std::unique_ptr<RedisNode>> nodes_;
  std::map<std::string, std::shared_ptr<StoreAdapter>> stores_;
  std::vector<v1::Checkpoint> checkpoints_;
};

TEST_F(ReshardTasksTest, Backfill8To16PutsEveryEntryOnItsTargetShardsWriteSetInBothGroups) {
  const auto source = MakeRoute(kSourceGen, 8);
  auto target = MakeRoute(kTargetGen, 16);
  // Shard 11 is mid-move in g1: its write set there also holds the group's third node.
  {
    auto* r = target.mutable_routes(11);
    r->set_sets_are_owners(false);
    r->set_state(v1::SHARD_DUAL_WRITE);
    *r->mutable_write_set() = r->owners();
    *r->mutable_acking_set() = r->owners();
    for (const char* n : {"a", "b", "c"}) {
      const auto& g1 = r->write_set(0).nodes();
      if (std::find(g1.begin(), g1.end(), n) == g1.end()) r->mutable_write_set(0)->add_nodes(n);
    }
    ASSERT_EQ(r->write_set(0).nodes_size(), 3);
  }
  const std::vector<std::string> keys = KeysOfShard(3, 8);
  ASSERT_GE(keys.size(), 12u);
  const auto sources = RouteNodes(source.routes(3), RouteSet::kOwners);
  ASSERT_EQ(sources.size(), 4u);
  std::map<std::string, StoredDoc> newest;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string body = R"({"i":)" + std::to_string(i) + "}";
    if (i % 4 == 0) {  // a tombstone on every owner
      PutIn(source, keys[i], 30 + i, "", /*tomb=*/true);
      newest[keys[i]] = Doc(keys[i], 30 + i, "", true);
    } else if (i % 4 == 1) {  // owners disagree: the newest copy wins, wherever it is
      PutIn(source, keys[i], 10, R"({"old":1})");
      PutIn(source, keys[i], 20 + i, body, false, sources[i % sources.size()]);
      newest[keys[i]] = Doc(keys[i], 20 + i, body);
    } else {
      PutIn(source, keys[i], 10 + i, body);
      newest[keys[i]] = Doc(keys[i], 10 + i, body);
    }
  }
  auto res = Run(CopyTask(v1::TASK_RESHARD_BACKFILL, source, 3, target));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), keys.size());
  ASSERT_EQ(res->watermarks_size(), 4);
  for (const auto& w : res->watermarks()) {
    auto pos = stores_[w.node()]->CurrentSeq(ShardKey{kIndex, kSourceGen, 3});
    EXPECT_EQ(w.seq(), pos->seq) << w.node();
  }
  ExpectSameHoldings(ScanTarget(target), Expected(target, newest));
  // 8 → 16 splits shard 3 into 3 and 11 only; 11's write set has three g1 nodes.
  std::set<uint32_t> shards;
  for (const auto& [k, d] : ScanTarget(target)) shards.insert(std::get<1>(k));
  EXPECT_EQ(shards, (std::set<uint32_t>{3, 11}));
  // The W checkpoint comes before any copy.
  ASSERT_FALSE(checkpoints_.empty());
  EXPECT_EQ(checkpoints_[0].watermarks_size(), 4);
  EXPECT_EQ(checkpoints_[0].documents(), 0u);
}

TEST_F(ReshardTasksTest, BackfillNeverOverwritesANewerVersionOnTheTarget) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  const auto keys = KeysOfShard(5, 8);
  ASSERT_GE(keys.size(), 2u);
  PutIn(source, keys[0], 10, R"({"from":"source"})");
  PutIn(source, keys[1], 10, R"({"from":"source"})");
  // A dual-written newer version already reached the target.
  PutIn(target, keys[0], 99, R"({"from":"dual-write"})", false, "", 2);
  auto res = Run(CopyTask(v1::TASK_RESHARD_BACKFILL, source, 5, target));
  ASSERT_TRUE(res.ok()) << res.status();
  ExpectSameHoldings(ScanTarget(target),
                     Expected(target, {{keys[0], Doc(keys[0], 99, R"({"from":"dual-write"})")},
                                       {keys[1], Doc(keys[1], 10, R"({"from":"source"})")}}));
}

TEST_F(ReshardTasksTest, BackfillResumesFromItsCheckpointCursor) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  const auto keys = KeysOfShard(1, 8);
  ASSERT_GE(keys.size(), 7u);
  std::map<std::string, StoredDoc> newest;
  for (const auto& k : keys) {
    PutIn(source, k, 10, "{}");
    newest[k] = Doc(k, 10, "{}");
  }
  v1::Task task = CopyTask(v1::TASK_RESHARD_BACKFILL, source, 1, target);
  auto stopped = Run(task, /*stop_after_checkpoints=*/2);  // W, then one page of 3
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled);
  const v1::Checkpoint cp = checkpoints_.back();
  EXPECT_EQ(cp.documents(), 3u);
  std::vector<std::string> sorted(keys);
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(cp.cursor(), sorted[2]);
  EXPECT_EQ(ScanTarget(target).size(), 3u * 4u) << "one page on four write-set nodes";
  *task.mutable_checkpoint() = cp;
  task.set_lease_generation(2);
  auto res = Run(task);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), keys.size());
  EXPECT_EQ(checkpoints_.front().documents(), 6u) << "resumed after the cursor, W kept";
  ExpectSameHoldings(ScanTarget(target), Expected(target, newest));
}

TEST_F(ReshardTasksTest, BackfillIntoAFencedTargetFailsPrecondition) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  const auto keys = KeysOfShard(2, 8);
  for (const auto& k : keys) PutIn(source, k, 10, "{}");
  const uint32_t t = ShardForKey(keys[0], 16);
  const std::string node = RouteNodes(target.routes(t), RouteSet::kWriteSet)[0];
  ASSERT_TRUE(stores_[node]->SetFence(ShardKey{kIndex, kTargetGen, t}, 9).ok());
  auto res = Run(CopyTask(v1::TASK_RESHARD_BACKFILL, source, 2, target));
  EXPECT_EQ(res.status().code(), absl::StatusCode::kFailedPrecondition) << res.status();
  EXPECT_THAT(std::string(res.status().message()), StartsWith(node + ": fenced at epoch 9"));
}

TEST_F(ReshardTasksTest, DeltaCopiesOnlyChangesAfterWAndReportsTheNewW) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  const auto keys = KeysOfShard(4, 8);
  ASSERT_GE(keys.size(), 4u);
  for (const auto& k : keys) PutIn(source, k, 10, "{}");
  auto bf = Run(CopyTask(v1::TASK_RESHARD_BACKFILL, source, 4, target));
  ASSERT_TRUE(bf.ok()) << bf.status();
  // Wipe the copy so the target shows exactly what the delta wrote.
  for (auto& [id, store] : stores_) {
    for (uint32_t s = 0; s < 16; ++s)
      ASSERT_TRUE(store->DeleteShard({kIndex, kTargetGen, s}, 2, {}).ok());
  }
  PutIn(source, keys[0], 20, R"({"changed":true})");
  PutIn(source, keys[1], 20, "", /*tomb=*/true);
  PutIn(source, "new-" + keys[2], 20, R"({"new":true})", false, "", 1);
  v1::Task delta = CopyTask(v1::TASK_RESHARD_DELTA, source, 4, target);
  *delta.mutable_checkpoint()->mutable_watermarks() = bf->watermarks();
  auto res = Run(delta);
  ASSERT_TRUE(res.ok()) << res.status();
  // "new-..." may hash to another source shard; count what each source really got.
  const bool new_here = ShardForKey("new-" + keys[2], 8) == 4;
  const uint64_t changes = new_here ? 3 : 2;
  EXPECT_EQ(res->remaining(), changes * 4) << "each of the 4 sources' changes";
  EXPECT_EQ(res->documents(), res->remaining());
  ASSERT_EQ(res->watermarks_size(), 4);
  for (const auto& w : res->watermarks()) {
    auto pos = stores_[w.node()]->CurrentSeq(ShardKey{kIndex, kSourceGen, 4});
    EXPECT_EQ(w.seq(), pos->seq) << w.node();
  }
  std::map<std::string, StoredDoc> changed = {{keys[0], Doc(keys[0], 20, R"({"changed":true})")},
                                              {keys[1], Doc(keys[1], 20, "", true)}};
  if (new_here) changed["new-" + keys[2]] = Doc("new-" + keys[2], 20, R"({"new":true})");
  ExpectSameHoldings(ScanTarget(target), Expected(target, changed));
  // Nothing new: a second pass copies nothing.
  *delta.mutable_checkpoint()->mutable_watermarks() = res->watermarks();
  res = Run(delta);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->remaining(), 0u);
}

TEST_F(ReshardTasksTest, FinalDeltaCopiesExactlyWToF) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  const auto keys = KeysOfShard(6, 8);
  ASSERT_GE(keys.size(), 3u);
  PutIn(source, keys[0], 10, "{}");
  auto bf = Run(CopyTask(v1::TASK_RESHARD_BACKFILL, source, 6, target));
  ASSERT_TRUE(bf.ok()) << bf.status();
  PutIn(source, keys[1], 10, "{}");  // in (W, F]
  v1::Task fd = CopyTask(v1::TASK_RESHARD_DELTA, source, 6, target);
  fd.set_epoch(3);
  *fd.mutable_checkpoint()->mutable_watermarks() = bf->watermarks();
  for (const auto& n : RouteNodes(source.routes(6), RouteSet::kOwners)) {
    auto f = stores_[n]->SetFence(ShardKey{kIndex, kSourceGen, 6}, 3);
    ASSERT_TRUE(f.ok()) << f.status();
    auto* up = fd.add_upto();
    up->set_node(n);
    up->set_incarnation(f->incarnation);
    up->set_seq(f->seq);
  }
  PutIn(source, keys[2], 10, "{}", false, "", /*epoch=*/3);  // after F
  auto res = Run(fd);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), 4u) << "keys[1] from each of the 4 fenced sources";
  for (const auto& w : res->watermarks()) {
    for (const auto& u : fd.upto()) {
      if (u.node() == w.node()) {
        EXPECT_EQ(w.seq(), u.seq()) << w.node();
      }
    }
  }
  ExpectSameHoldings(ScanTarget(target), Expected(target, {{keys[0], Doc(keys[0], 10, "{}")},
                                                           {keys[1], Doc(keys[1], 10, "{}")}}));
}

// The swap's node-batched tasks (issue 19): one FENCE per node over every shard
// it owns, one final delta per source node over every shard it sources.
TEST_F(ReshardTasksTest, NodeBatchedFenceFencesEveryListedShardAndReportsEachF) {
  const auto source = MakeRoute(kSourceGen, 8);
  const std::vector<uint32_t> owned = ShardsOf("a", source);
  ASSERT_GE(owned.size(), 2u);
  for (uint32_t s : owned) {
    for (const auto& k : KeysOfShard(s, 8, 40)) PutIn(source, k, 10, "{}", false, "a");
  }
  v1::Task t;
  t.set_id(3);
  t.set_kind(v1::TASK_FENCE);
  t.set_epoch(0);  // a position read first: raises nothing
  t.set_index(kIndex);
  t.set_generation(kSourceGen);
  t.set_shards(8);
  t.add_targets("a");
  for (uint32_t s : owned) t.add_node_shards()->set_shard(s);
  auto pos = Run(t);
  ASSERT_TRUE(pos.ok()) << pos.status();
  ASSERT_EQ(pos->node_shards_size(), static_cast<int>(owned.size()));
  for (const auto& b : pos->node_shards()) {
    EXPECT_EQ(*stores_["a"]->GetFence(ShardKey{kIndex, kSourceGen, b.shard()}), 0u);
  }
  t.set_epoch(5);
  auto res = Run(t);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->unreachable_size(), 0);
  ASSERT_EQ(res->node_shards_size(), static_cast<int>(owned.size()));
  for (int i = 0; i < res->node_shards_size(); ++i) {
    const auto& b = res->node_shards(i);
    EXPECT_EQ(b.shard(), owned[static_cast<size_t>(i)]);
    const ShardKey key{kIndex, kSourceGen, b.shard()};
    EXPECT_EQ(*stores_["a"]->GetFence(key), 5u) << "shard " << b.shard();
    auto cur = stores_["a"]->CurrentSeq(key);
    ASSERT_TRUE(cur.ok());
    EXPECT_EQ(b.watermark().node(), "a");
    EXPECT_EQ(b.watermark().incarnation(), cur->incarnation);
    EXPECT_EQ(b.watermark().seq(), cur->seq) << "shard " << b.shard();
    EXPECT_EQ(b.watermark().seq(), pos->node_shards(i).watermark().seq())
        << "nothing written since";
  }
  // A node that does not answer is reported, not failed: the coordinator counts F.
  ASSERT_TRUE(nodes_["a"]->Stop().ok());
  res = Run(t);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_THAT(res->unreachable(), ElementsAre("a"));
  EXPECT_EQ(res->node_shards_size(), 0);
}

TEST_F(ReshardTasksTest, NodeBatchedFinalDeltaCopiesExactlyWToFOfEveryShardFromItsNode) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  const std::vector<uint32_t> owned = ShardsOf("a", source);
  ASSERT_GE(owned.size(), 2u);
  std::map<uint32_t, std::vector<std::string>> keys;
  std::map<uint32_t, v1::Watermark> w;  // W of a per shard
  for (uint32_t s : owned) {
    keys[s] = KeysOfShard(s, 8, 200);
    ASSERT_GE(keys[s].size(), 9u);
    PutIn(source, keys[s][0], 10, "{}", false, "a");
    auto cur = stores_["a"]->CurrentSeq(ShardKey{kIndex, kSourceGen, s});
    ASSERT_TRUE(cur.ok());
    w[s].set_node("a");
    w[s].set_incarnation(cur->incarnation);
    w[s].set_seq(cur->seq);
  }
  // In (W, F]: 7 entries on the first shard (more than a page of 3), 1 on the
  // others; after F: one more on each.
  std::map<std::string, StoredDoc> want;
  for (size_t i = 0; i < owned.size(); ++i) {
    const uint32_t s = owned[i];
    const size_t n = i == 0 ? 7 : 1;
    for (size_t k = 1; k <= n; ++k) {
      PutIn(source, keys[s][k], 20, "{\"k\":1}", false, "a");
      want[keys[s][k]] = Doc(keys[s][k], 20, "{\"k\":1}");
    }
  }
  PutIn(source, keys[owned[1]][2], 30, "", /*tomb=*/true, "a");  // a delete in (W, F]
  want[keys[owned[1]][2]] = Doc(keys[owned[1]][2], 30, "", true);
  v1::Task fd = CopyTask(v1::TASK_RESHARD_DELTA, source, 0, target);
  fd.set_epoch(3);
  fd.clear_sources();
  fd.add_sources("a");
  for (uint32_t s : owned) {
    auto f = stores_["a"]->SetFence(ShardKey{kIndex, kSourceGen, s}, 3);
    ASSERT_TRUE(f.ok()) << f.status();
    v1::BatchShard* b = fd.add_node_shards();
    b->set_shard(s);
    *b->mutable_from() = w[s];
    b->mutable_upto()->set_node("a");
    b->mutable_upto()->set_incarnation(f->incarnation);
    b->mutable_upto()->set_seq(f->seq);
  }
  for (uint32_t s : owned) PutIn(source, keys[s][8], 40, "{}", false, "a", /*epoch=*/3);  // after F
  auto res = Run(fd);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), want.size());
  ASSERT_EQ(res->node_shards_size(), static_cast<int>(owned.size()));
  for (int i = 0; i < res->node_shards_size(); ++i) {
    const auto& b = res->node_shards(i);
    EXPECT_EQ(b.shard(), owned[static_cast<size_t>(i)]);
    EXPECT_EQ(b.watermark().seq(), fd.node_shards(i).upto().seq()) << "W reached is F";
    EXPECT_EQ(b.documents(), i == 0 ? 7u : (i == 1 ? 2u : 1u)) << "shard " << b.shard();
  }
  ExpectSameHoldings(ScanTarget(target), Expected(target, want));
}

TEST_F(ReshardTasksTest, NodeBatchedCatchUpCopiesEachShardFromWToItsPositionNow) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  const std::vector<uint32_t> owned = ShardsOf("a", source);
  ASSERT_GE(owned.size(), 2u);
  v1::Task pass = CopyTask(v1::TASK_RESHARD_DELTA, source, 0, target);
  pass.clear_sources();
  pass.add_sources("a");
  std::map<std::string, StoredDoc> want;
  for (size_t i = 0; i < owned.size(); ++i) {
    const uint32_t s = owned[i];
    const auto keys = KeysOfShard(s, 8, 200);
    ASSERT_GE(keys.size(), 6u);
    PutIn(source, keys[0], 10, "{}", false, "a");  // before W: not copied
    auto cur = stores_["a"]->CurrentSeq(ShardKey{kIndex, kSourceGen, s});
    ASSERT_TRUE(cur.ok());
    v1::BatchShard* b = pass.add_node_shards();  // no F: up to the position now
    b->set_shard(s);
    b->mutable_from()->set_node("a");
    b->mutable_from()->set_incarnation(cur->incarnation);
    b->mutable_from()->set_seq(cur->seq);
    const size_t n = i == 0 ? 5 : 1;  // more than a page of 3 on the first shard
    for (size_t k = 1; k <= n; ++k) {
      PutIn(source, keys[k], 20, "{}", false, "a");
      want[keys[k]] = Doc(keys[k], 20, "{}");
    }
  }
  auto res = Run(pass);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), want.size());
  ASSERT_EQ(res->node_shards_size(), static_cast<int>(owned.size()));
  for (int i = 0; i < res->node_shards_size(); ++i) {
    const auto& b = res->node_shards(i);
    auto cur = stores_["a"]->CurrentSeq(ShardKey{kIndex, kSourceGen, b.shard()});
    ASSERT_TRUE(cur.ok());
    EXPECT_EQ(b.watermark().node(), "a");
    EXPECT_EQ(b.watermark().incarnation(), cur->incarnation);
    EXPECT_EQ(b.watermark().seq(), cur->seq) << "the new W is the position it read";
    EXPECT_EQ(b.documents(), i == 0 ? 5u : 1u);
    EXPECT_EQ(*stores_["a"]->GetFence(ShardKey{kIndex, kSourceGen, b.shard()}), 0u)
        << "reading the position raised no fence";
  }
  ExpectSameHoldings(ScanTarget(target), Expected(target, want));
  // The next pass from the new W copies nothing.
  for (int i = 0; i < pass.node_shards_size(); ++i) {
    *pass.mutable_node_shards(i)->mutable_from() = res->node_shards(i).watermark();
  }
  res = Run(pass);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->documents(), 0u);
}

TEST_F(ReshardTasksTest, NodeBatchedFinalDeltaRefusesAnotherIncarnationAndMalformedBatches) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  v1::Task fd = CopyTask(v1::TASK_RESHARD_DELTA, source, 0, target);
  fd.clear_sources();
  fd.add_sources("a");
  v1::BatchShard* b = fd.add_node_shards();
  b->set_shard(1);
  b->mutable_from()->set_node("a");
  b->mutable_from()->set_incarnation("not-a's");
  b->mutable_from()->set_seq(1);
  *b->mutable_upto() = b->from();
  b->mutable_upto()->set_seq(5);
  auto res = Run(fd);
  EXPECT_EQ(TaskFailureOf(res.status()), v1::TASK_FAILURE_INCARNATION_CHANGED) << res.status();
  EXPECT_THAT(std::string(res.status().message()), HasSubstr("node a was not-a's, now "));

  v1::Task two = fd;
  two.add_sources("b");
  res = Run(two);
  EXPECT_EQ(res.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(res.status().message()),
              StartsWith("sources: a batched RESHARD_DELTA names one node"));

  v1::Task other_node = fd;
  other_node.mutable_node_shards(0)->mutable_upto()->set_node("b");
  res = Run(other_node);
  EXPECT_EQ(res.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(res.status().message()),
              HasSubstr("batch: shard 1: W and F must be positions of a"));

  v1::Task out_of_range = fd;
  out_of_range.mutable_node_shards(0)->set_shard(8);
  res = Run(out_of_range);
  EXPECT_EQ(res.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(res.status().message()), HasSubstr("batch shard 8 is not below 8"));
}

TEST_F(ReshardTasksTest, DeltaFailsWhenASourceIncarnationChanged) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  const auto keys = KeysOfShard(0, 8);
  PutIn(source, keys[0], 10, "{}");
  auto bf = Run(CopyTask(v1::TASK_RESHARD_BACKFILL, source, 0, target));
  ASSERT_TRUE(bf.ok()) << bf.status();
  const std::string wiped = bf->watermarks(0).node();
  ASSERT_TRUE(nodes_[wiped]->WipeRestart().ok());
  v1::Task delta = CopyTask(v1::TASK_RESHARD_DELTA, source, 0, target);
  *delta.mutable_checkpoint()->mutable_watermarks() = bf->watermarks();
  absl::StatusOr<v1::TaskResult> res = Run(delta);
  for (int i = 0; i < 3 && res.status().code() == absl::StatusCode::kUnavailable; ++i) {
    res = Run(delta);
  }
  EXPECT_EQ(res.status().code(), absl::StatusCode::kFailedPrecondition) << res.status();
  EXPECT_THAT(std::string(res.status().message()),
              StartsWith("incarnation changed: node " + wiped));
  EXPECT_EQ(TaskFailureOf(res.status()), v1::TASK_FAILURE_INCARNATION_CHANGED);
}

TEST_F(ReshardTasksTest, MalformedTasksAreInvalidArgumentsNamingTheField) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  v1::Task t = CopyTask(v1::TASK_RESHARD_BACKFILL, source, 0, target);
  t.clear_target_route();
  EXPECT_EQ(Run(t).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(Run(t).status().message()), HasSubstr("target_route: missing"));
  t = CopyTask(v1::TASK_RESHARD_DELTA, source, 0, target);
  t.mutable_target_route()->set_shards(0);
  EXPECT_THAT(std::string(Run(t).status().message()), HasSubstr("target_route.shards: 0"));
  t = CopyTask(v1::TASK_RESHARD_BACKFILL, source, 0, target);
  t.mutable_target_route()->mutable_routes()->RemoveLast();
  EXPECT_EQ(Run(t).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(Run(t).status().message()),
              HasSubstr("target_route.routes: 15 entries for 16"));
  t = CopyTask(v1::TASK_RESHARD_BACKFILL, source, 0, source);
  EXPECT_THAT(std::string(Run(t).status().message()), HasSubstr("target_route.generation"));
  v1::Task v = VerifyTask(source, target);
  v.clear_source_route();
  EXPECT_EQ(Run(v).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(Run(v).status().message()), HasSubstr("source_route: missing"));
  EXPECT_TRUE(checkpoints_.empty()) << "nothing ran";
}

TEST_F(ReshardTasksTest, VerifyOfACorrectCopyFindsNoMismatch) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  for (int i = 0; i < 60; ++i) {
    const std::string pk = "key-" + std::to_string(i);
    PutIn(source, pk, 10 + i, R"({"i":)" + std::to_string(i) + "}", /*tomb=*/i % 5 == 0);
  }
  // One owner of a key holds an older copy: the merged (newest) view is compared.
  const auto owners = RouteNodes(source.routes(ShardForKey("key-1", 8)), RouteSet::kOwners);
  PutIn(source, "key-1", 500, R"({"i":"newest"})", false, owners[0]);
  BackfillAll(source, target);
  auto res = Run(VerifyTask(source, target));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->mismatches(), 0u);
  EXPECT_EQ(res->newer_in_source(), 0u);
  EXPECT_EQ(res->divergent_keys_size(), 0);
  EXPECT_EQ(res->divergent_buckets(), 0u);
  EXPECT_EQ(res->documents(), 60u);
  EXPECT_EQ(res->replicas_reached(), 8u * 4 + 16u * 4);
  EXPECT_EQ(res->digests_size(), 6) << "one per target node";
  uint64_t entries = 0;
  for (const auto& d : res->digests()) entries += d.documents() + d.tombstones();
  EXPECT_EQ(entries, 60u * 4) << "every key on its 4 owners";
}

TEST_F(ReshardTasksTest, VerifyReportsEveryKindOfDivergence) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  for (int i = 0; i < 60; ++i) {
    PutIn(source, "key-" + std::to_string(i), 10, R"({"i":)" + std::to_string(i) + "}");
  }
  BackfillAll(source, target);
  // key-10: one target replica's body altered at the same version (corruption).
  {
    const uint32_t s = ShardForKey("key-10", 16);
    const std::string n = RouteNodes(target.routes(s), RouteSet::kOwners)[1];
    Mutation m{"key-10", Version{10, 7}, false, R"({"i":"corrupt"})", 0};
    m.overwrite_same_version = true;
    auto r = stores_[n]->Apply(ShardKey{kIndex, kTargetGen, s}, 2, {m});
    ASSERT_TRUE(r.ok() && (*r)[0].outcome == ApplyOutcome::kApplied);
  }
  // key-20: newer in the source; key-60: only in the source; extra-1: only in the target.
  PutIn(source, "key-20", 30, R"({"i":"newer"})");
  PutIn(source, "key-60", 30, "", /*tomb=*/true);
  PutIn(target, "extra-1", 30, "{}", false, "", 2);
  auto res = Run(VerifyTask(source, target));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->mismatches(), 4u);
  EXPECT_EQ(res->newer_in_source(), 2u) << "key-20 and key-60";
  EXPECT_THAT(res->divergent_keys(), ElementsAre("extra-1", "key-10", "key-20", "key-60"));
  EXPECT_GE(res->divergent_buckets(), 1u);
  EXPECT_LE(res->divergent_buckets(), 4u);
  EXPECT_EQ(res->documents(), 62u) << "61 source keys and one the target alone holds";
  // Verify only reads: the corrupt body is still there.
  const uint32_t s = ShardForKey("key-10", 16);
  const std::string n = RouteNodes(target.routes(s), RouteSet::kOwners)[1];
  EXPECT_EQ(stores_[n]->Get(ShardKey{kIndex, kTargetGen, s}, kAnyEpoch, "key-10")->body,
            R"({"i":"corrupt"})");
}

TEST_F(ReshardTasksTest, VerifyCountsAKeyMissingOnOneTargetOwnerAsNewerInSource) {
  const auto source = MakeRoute(kSourceGen, 8);
  const auto target = MakeRoute(kTargetGen, 16);
  for (int i = 0; i < 20; ++i) PutIn(source, "key-" + std::to_string(i), 10, "{}");
  BackfillAll(source, target);
  // key-3 changes in the source; only one target owner got the change.
  PutIn(source, "key-3", 40, R"({"v":2})");
  const uint32_t s = ShardForKey("key-3", 16);
  PutIn(target, "key-3", 40, R"({"v":2})", false,
        RouteNodes(target.routes(s), RouteSet::kOwners)[0], 2);
  auto res = Run(VerifyTask(source, target));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->mismatches(), 1u);
  EXPECT_EQ(res->newer_in_source(), 1u);
  EXPECT_THAT(res->divergent_keys(), ElementsAre("key-3"));
}

TEST_F(ReshardTasksTest, Reshard16To12CopiesAndVerifies) {
  const auto source = MakeRoute(kSourceGen, 16);
  const auto target = MakeRoute(kTargetGen, 12);
  std::map<std::string, StoredDoc> newest;
  for (int i = 0; i < 80; ++i) {
    const std::string pk = "key-" + std::to_string(i);
    const bool tomb = i % 7 == 0;
    PutIn(source, pk, 100 + i, "{}", tomb);
    newest[pk] = Doc(pk, 100 + i, "{}", tomb);
  }
  BackfillAll(source, target);
  ExpectSameHoldings(ScanTarget(target), Expected(target, newest));
  auto res = Run(VerifyTask(source, target));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->mismatches(), 0u);
  EXPECT_EQ(res->documents(), 80u);
  // And the other way round finds the source side short of nothing either.
  auto back = Run(VerifyTask(target, source));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->mismatches(), 0u);
}

TEST(ReshardRouting, RouteMutationsBatchesPerNodeAndTargetShard) {
  v1::GenerationRoute g;
  g.set_index(kIndex);
  g.set_generation(kTargetGen);
  g.set_shards(2);
  for (uint32_t s = 0; s < 2; ++s) {
    auto* r = g.add_routes();
    r->set_shard(s);
    r->set_sets_are_owners(true);
    auto* o = r->add_owners();
    o->set_group("g1");
    o->add_nodes(s == 0 ? "x" : "y");
    o->add_nodes("z");
  }
  std::vector<Mutation> muts;
  for (int i = 0; i < 10; ++i)
    muts.push_back(Mutation{"k" + std::to_string(i), {1, 1}, false, "{}", 0});
  auto by_node = RouteMutations(g, muts);
  ASSERT_EQ(by_node.size(), 3u);
  ASSERT_EQ(by_node["z"].size(), 2u) << "one batch per target shard";
  EXPECT_EQ(by_node["z"][0].shard.shard, 0u);
  EXPECT_EQ(by_node["z"][1].shard.shard, 1u);
  EXPECT_EQ(by_node["z"][0].muts.size() + by_node["z"][1].muts.size(), 10u);
  ASSERT_EQ(by_node["x"].size(), 1u);
  EXPECT_EQ(by_node["x"][0].shard.generation, kTargetGen);
  for (const auto& m : by_node["x"][0].muts) EXPECT_EQ(ShardForKey(m.pk, 2), 0u);
  EXPECT_EQ(by_node["x"][0].muts.size(), by_node["z"][0].muts.size());
  EXPECT_EQ(by_node["y"][0].muts.size(), by_node["z"][1].muts.size());
}

}  // namespace
}  // namespace miroir
