// Anti-entropy passes (DESIGN §8, docs/anti-entropy.md) on real redis-server
// replicas: divergence is injected straight into one replica (through the store
// adapter or raw redis), then the AE_PASS executor runs as a worker runs it.
#include <gtest/gtest.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/digest.h"
#include "harness/redis_node.h"
#include "harness/temp_dir.h"
#include "worker/stores/redis_store.h"
#include "worker/tasks/task_executors.h"

namespace miroir {
namespace {

using testing::RedisNode;
using testing::TempDir;

class AntiEntropyPass : public ::testing::Test {
 protected:
  void StartReplicas(std::vector<std::string> ids) {
    for (const auto& id : ids) {
      auto n = RedisNode::Start(dir_.Subdir(id));
      ASSERT_TRUE(n.ok()) << n.status();
      StoreOptions so;
      so.op_timeout_ms = 2000;
      so.connect_timeout_ms = 1000;
      auto s = RedisStore::Create((*n)->address(), so);
      ASSERT_TRUE(s.ok()) << s.status();
      stores_[id] = std::shared_ptr<StoreAdapter>(std::move(*s));
      nodes_[id] = std::move(*n);
      ids_.push_back(id);
    }
  }

  void Put(const std::string& node, const std::string& pk, uint64_t hlc, const std::string& body,
           int64_t expires_at_ms = 0) {
    auto r = stores_[node]->Apply(shard_, 1,
                                  {Mutation{pk, Version{hlc, 9}, false, body, expires_at_ms}});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ((*r)[0].outcome, ApplyOutcome::kApplied);
  }
  void Delete(const std::string& node, const std::string& pk, uint64_t hlc) {
    auto r = stores_[node]->Apply(shard_, 1, {Mutation{pk, Version{hlc, 9}, true, "", 0}});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  void PutAll(const std::string& pk, uint64_t hlc, const std::string& body) {
    for (const auto& id : ids_) Put(id, pk, hlc, body);
  }
  // A healthy shard: 200 documents and 20 tombstones on every replica.
  void SeedHealthy() {
    for (int i = 0; i < 200; ++i) PutAll(absl::StrCat("doc:", i), 100 + i, "{\"i\":1}");
    for (int i = 0; i < 20; ++i) {
      for (const auto& id : ids_) Delete(id, absl::StrCat("doc:", i), 1000 + i);
    }
  }
  // Overwrites the stored body of `pk` on `node` behind the adapter's back (a
  // flipped byte: same version, different body).
  void CorruptBody(const std::string& node, const std::string& pk, const std::string& body) {
    auto r = nodes_[node]->Command(
        {"HSET",
         absl::StrCat("mi:", shard_.index, ":", shard_.generation, ":", shard_.shard, ":d:", pk),
         "b", body});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  absl::StatusOr<StoredDoc> Get(const std::string& node, const std::string& pk) {
    return stores_[node]->Get(shard_, kAnyEpoch, pk);
  }
  uint64_t Seq(const std::string& node) {
    auto p = stores_[node]->CurrentSeq(shard_);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? p->seq : 0;
  }

  absl::StatusOr<v1::TaskResult> Pass(bool repair, int64_t purge_before_ms = 0) {
    v1::Task t;
    t.set_id(7);
    t.set_kind(v1::TASK_AE_PASS);
    t.set_lease_generation(1);
    t.set_epoch(3);
    t.set_index(shard_.index);
    t.set_generation(shard_.generation);
    t.set_shards(8);
    t.set_shard(shard_.shard);
    for (const auto& id : ids_) {
      t.add_sources(id);
      t.add_targets(id);
    }
    t.set_batch_size(16);
    t.set_ae_buckets(32);
    t.set_repair(repair);
    t.set_purge_tombstones_before_ms(purge_before_ms);
    TaskContext ctx;
    ctx.task = t;
    ctx.store = [this](const std::string& id) -> absl::StatusOr<std::shared_ptr<StoreAdapter>> {
      auto it = stores_.find(id);
      if (it == stores_.end()) return absl::NotFoundError("node: unknown " + id);
      return it->second;
    };
    ctx.checkpoint = [](const v1::Checkpoint&) { return true; };
    ctx.cancelled = [] { return false; };
    return RunTask(ctx);
  }

  // Every replica holds exactly `hlc` for pk, as a tombstone or with `body`.
  void ExpectEverywhere(const std::string& pk, uint64_t hlc, bool tombstone,
                        const std::string& body = "") {
    for (const auto& id : ids_) {
      auto d = Get(id, pk);
      ASSERT_TRUE(d.ok()) << id << ": " << d.status();
      EXPECT_EQ(d->version.hlc, hlc) << id;
      EXPECT_EQ(d->tombstone, tombstone) << id;
      if (!tombstone) {
        EXPECT_EQ(d->body, body) << id;
      }
    }
  }

  TempDir dir_{"ae"};
  std::map<std::string, std::unique_ptr<RedisNode>> nodes_;
  std::map<std::string, std::shared_ptr<StoreAdapter>> stores_;
  std::vector<std::string> ids_;
  ShardKey shard_{"products", 1, 5};
};

TEST_F(AntiEntropyPass, HealthyReplicasFindNothingAndWriteNothing) {
  StartReplicas({"r0", "r1", "r2"});
  SeedHealthy();
  std::map<std::string, uint64_t> before;
  for (const auto& id : ids_) before[id] = Seq(id);
  auto r = Pass(/*repair=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mismatches(), 0u);
  EXPECT_EQ(r->divergent_buckets(), 0u);
  EXPECT_EQ(r->documents(), 0u);
  EXPECT_EQ(r->replicas_reached(), 3u);
  ASSERT_EQ(r->digests_size(), 3);
  EXPECT_EQ(r->digests(0).documents(), 180u);
  EXPECT_EQ(r->digests(0).tombstones(), 20u);
  for (const auto& id : ids_) EXPECT_EQ(Seq(id), before[id]) << id << ": change seq moved";
}

TEST_F(AntiEntropyPass, MissingDocumentAndStaleVersionAreRepaired) {
  StartReplicas({"r0", "r1", "r2"});
  SeedHealthy();
  Put("r0", "new:1", 5000, "{\"n\":1}");
  Put("r2", "new:1", 5000, "{\"n\":1}");  // missing on r1
  PutAll("stale:1", 4000, "{\"v\":1}");
  Put("r1", "stale:1", 4100, "{\"v\":2}");  // r0, r2 stale
  const uint64_t r0_before = Seq("r0");
  auto r = Pass(true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mismatches(), 2u);
  EXPECT_EQ(r->documents(), 3u);  // r1 gets new:1; r0 and r2 get stale:1 v2
  EXPECT_GE(r->divergent_buckets(), 1u);
  EXPECT_LE(r->divergent_buckets(), 2u);
  ExpectEverywhere("new:1", 5000, false, "{\"n\":1}");
  ExpectEverywhere("stale:1", 4100, false, "{\"v\":2}");
  EXPECT_EQ(Seq("r0"), r0_before + 1);  // exactly one repair write on r0
  auto again = Pass(true);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->mismatches(), 0u);
  EXPECT_EQ(again->divergent_buckets(), 0u);
}

TEST_F(AntiEntropyPass, ChangedBodyByteIsRepairedByMajorityWithThreeReplicas) {
  StartReplicas({"r0", "r1", "r2"});
  SeedHealthy();
  PutAll("c:1", 6000, "{\"name\":\"abc\"}");
  CorruptBody("r1", "c:1", "{\"name\":\"abd\"}");
  auto r = Pass(true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mismatches(), 1u);
  EXPECT_EQ(r->conflicts(), 1u);
  EXPECT_EQ(r->unresolved_conflicts(), 0u);
  EXPECT_EQ(r->documents(), 1u);
  ExpectEverywhere("c:1", 6000, false, "{\"name\":\"abc\"}");
}

TEST_F(AntiEntropyPass, ChangedBodyByteWithTwoReplicasIsReportedAndConvergedByRule) {
  StartReplicas({"r0", "r1"});
  SeedHealthy();
  PutAll("c:1", 6000, "{\"name\":\"abc\"}");
  CorruptBody("r1", "c:1", "{\"name\":\"abd\"}");
  auto r = Pass(true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->conflicts(), 1u);
  EXPECT_EQ(r->unresolved_conflicts(), 1u);
  ASSERT_EQ(r->divergent_keys_size(), 1);
  EXPECT_EQ(r->divergent_keys(0), "c:1");
  const std::string a = "{\"name\":\"abc\"}", b = "{\"name\":\"abd\"}";
  ExpectEverywhere("c:1", 6000, false, BodyHash(a) < BodyHash(b) ? a : b);
}

TEST_F(AntiEntropyPass, TombstoneOnOneReplicaOnlyDeletesEverywhere) {
  StartReplicas({"r0", "r1", "r2"});
  SeedHealthy();
  PutAll("t:1", 7000, "{\"x\":1}");
  Delete("r2", "t:1", 7100);
  auto r = Pass(true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mismatches(), 1u);
  EXPECT_EQ(r->documents(), 2u);
  ExpectEverywhere("t:1", 7100, true);
}

TEST_F(AntiEntropyPass, ExpiredDocumentBecomesTombstoneAtItsOwnVersionAndIsNeverRewritten) {
  StartReplicas({"r0", "r1", "r2"});
  SeedHealthy();
  const int64_t past = SystemClock::Default()->NowMs() - 60'000;
  Put("r0", "e:1", 8000, "{\"ttl\":1}", past);  // still present on r0
  Delete("r1", "e:1", 8000);                    // r1 already turned it into a tombstone
  // r2 never got it.
  auto r = Pass(true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->expired(), 1u);
  EXPECT_EQ(r->mismatches(), 1u);
  EXPECT_EQ(r->documents(), 2u);
  ExpectEverywhere("e:1", 8000, true);
  // A later put still wins over the tombstone at the document's own version.
  PutAll("e:1", 8001, "{\"back\":1}");
  auto again = Pass(true);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->mismatches(), 0u);
  ExpectEverywhere("e:1", 8001, false, "{\"back\":1}");
}

TEST_F(AntiEntropyPass, ExpiredDocumentOnEveryReplicaIsStillTurnedIntoATombstone) {
  StartReplicas({"r0", "r1"});
  const int64_t past = SystemClock::Default()->NowMs() - 60'000;
  for (const auto& id : ids_) Put(id, "e:2", 8100, "{\"ttl\":1}", past);
  auto r = Pass(true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->expired(), 1u);
  EXPECT_EQ(r->divergent_buckets(), 1u);
  ExpectEverywhere("e:2", 8100, true);
}

TEST_F(AntiEntropyPass, ReportOnlyFindsEveryDivergenceAndWritesNothing) {
  StartReplicas({"r0", "r1", "r2"});
  SeedHealthy();
  Put("r0", "m:1", 9000, "{}");
  PutAll("t:1", 9000, "{}");
  Delete("r1", "t:1", 9001);
  std::map<std::string, uint64_t> before;
  for (const auto& id : ids_) before[id] = Seq(id);
  auto r = Pass(/*repair=*/false, /*purge_before_ms=*/SystemClock::Default()->NowMs() + 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mismatches(), 2u);
  EXPECT_EQ(r->documents(), 0u);
  EXPECT_EQ(r->purged_tombstones(), 0u);
  for (const auto& id : ids_) EXPECT_EQ(Seq(id), before[id]) << id;
  EXPECT_FALSE(Get("r1", "m:1").ok());
  auto t = Get("r0", "t:1");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->tombstone);
}

TEST_F(AntiEntropyPass, TombstoneGcWaitsForTheGraceBound) {
  StartReplicas({"r0", "r1"});
  SeedHealthy();
  // The coordinator's bound (now − grace) lies before every tombstone: none goes.
  auto r = Pass(true, /*purge_before_ms=*/SystemClock::Default()->NowMs() - 3'600'000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->purged_tombstones(), 0u);
  for (const auto& id : ids_) {
    auto d = Get(id, "doc:3");
    ASSERT_TRUE(d.ok()) << id;
    EXPECT_TRUE(d->tombstone);
  }
}

TEST_F(AntiEntropyPass, TombstoneGcAfterRepairingPassPurgesOnlyWhatThePassSaw) {
  StartReplicas({"r0", "r1"});
  SeedHealthy();
  Delete("r0", "only:r0", 9500);  // r1 misses it; the pass copies it first
  // Apply times are node-clock ms; make "applied before the pass began" strict.
  absl::SleepFor(absl::Milliseconds(5));
  // A bound in the future is clamped to the pass start: everything applied
  // before the pass began is purged, on every replica.
  auto r = Pass(true, /*purge_before_ms=*/SystemClock::Default()->NowMs() + 3'600'000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mismatches(), 1u);
  EXPECT_EQ(r->purged_tombstones(), 2u * 20u + 1u);  // r1's repaired copy is newer than the start
  for (const auto& id : ids_) {
    EXPECT_EQ(Get(id, "doc:3").status().code(), absl::StatusCode::kNotFound) << id;
    auto live = Get(id, "doc:150");
    ASSERT_TRUE(live.ok()) << id;
    EXPECT_FALSE(live->tombstone);
  }
  auto kept = Get("r1", "only:r0");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(kept->tombstone);
}

TEST_F(AntiEntropyPass, UnreachableReplicaFailsRetryableAndPurgesNothing) {
  StartReplicas({"r0", "r1"});
  SeedHealthy();
  ASSERT_TRUE(nodes_["r1"]->Kill().ok());
  auto r = Pass(true, SystemClock::Default()->NowMs() + 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  auto d = Get("r0", "doc:3");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->tombstone);
}

}  // namespace
}  // namespace miroir
