// RedisStore against a real redis-server (harness RedisNode): conditional writes,
// fences, tombstones, keyset scans, change sequences, incarnation, stats.
#include "worker/stores/redis_store.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "harness/redis_node.h"
#include "harness/temp_dir.h"

namespace miroir {
namespace {

using testing::RedisNode;
using testing::TempDir;

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = RedisNode::Start(dir_.Subdir("redis"));
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto store = RedisStore::Create(node_->address(), StoreOptions{});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  ApplyResult Put(const std::string& pk, uint64_t hlc, const std::string& body, uint64_t epoch = 1,
                  uint64_t writer = 7) {
    auto r = store_->Apply(shard_, epoch, {Mutation{pk, Version{hlc, writer}, false, body, 0}});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? (*r)[0] : ApplyResult{};
  }
  ApplyResult Del(const std::string& pk, uint64_t hlc, uint64_t epoch = 1) {
    auto r = store_->Apply(shard_, epoch, {Mutation{pk, Version{hlc, 7}, true, "", 0}});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? (*r)[0] : ApplyResult{};
  }

  // `n` entries k0..k{n-1} at version 10 in one call.
  void Fill(int n, bool tombstones) {
    std::vector<Mutation> muts;
    for (int i = 0; i < n; ++i) {
      muts.push_back(
          Mutation{"k" + std::to_string(i), Version{10, 7}, tombstones, tombstones ? "" : "{}", 0});
    }
    ASSERT_TRUE(store_->Apply(shard_, 1, muts).ok());
  }
  // Entries (documents and tombstones) the shard still holds.
  size_t Left() { return store_->Scan(shard_, kAnyEpoch, "", 100000)->size(); }

  TempDir dir_{"redis-store"};
  std::unique_ptr<RedisNode> node_;
  std::unique_ptr<RedisStore> store_;
  ShardKey shard_{"products", 1, 3};
};

TEST_F(RedisStoreTest, PutThenGetReturnsBodyAndVersion) {
  EXPECT_EQ(Put("a", 100, R"({"x":1})").outcome, ApplyOutcome::kApplied);
  auto d = store_->Get(shard_, 1, "a");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->body, R"({"x":1})");
  EXPECT_EQ(d->version, (Version{100, 7}));
  EXPECT_FALSE(d->tombstone);
  EXPECT_EQ(store_->Get(shard_, 1, "zz").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RedisStoreTest, OlderVersionIsRefusedWithStoredVersion) {
  Put("a", 200, R"({"v":"new"})");
  ApplyResult r = Put("a", 100, R"({"v":"old"})");
  EXPECT_EQ(r.outcome, ApplyOutcome::kStoredIsNewer);
  EXPECT_EQ(r.stored, (Version{200, 7}));
  EXPECT_EQ(store_->Get(shard_, 1, "a")->body, R"({"v":"new"})");
  // Same hlc, lower writer id also loses: the writer breaks ties.
  EXPECT_EQ(Put("a", 200, R"({"v":"tie"})", 1, 6).outcome, ApplyOutcome::kStoredIsNewer);
  EXPECT_EQ(Put("a", 200, R"({"v":"tie"})", 1, 8).outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(store_->Get(shard_, 1, "a")->body, R"({"v":"tie"})");
}

TEST_F(RedisStoreTest, VersionsCompareAsU64NotAsDoubles) {
  // Two versions that collapse to the same double: only text comparison orders them.
  const uint64_t hi = (uint64_t{1} << 62) + 1;
  Put("a", hi, R"({"v":1})");
  EXPECT_EQ(Put("a", hi - 1, R"({"v":0})").outcome, ApplyOutcome::kStoredIsNewer);
  EXPECT_EQ(Put("a", hi + 1, R"({"v":2})").outcome, ApplyOutcome::kApplied);
}

TEST_F(RedisStoreTest, SameVersionIsAppliedWithoutNewSeq) {
  ApplyResult first = Put("a", 100, R"({"x":1})");
  ApplyResult retry = Put("a", 100, R"({"x":1})");
  EXPECT_EQ(retry.outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(retry.change_seq, first.change_seq);
  EXPECT_EQ(store_->CurrentSeq(shard_)->seq, first.change_seq);
}

TEST_F(RedisStoreTest, DeleteOfAbsentKeyWritesTombstoneThatBlocksOlderPut) {
  EXPECT_EQ(Del("ghost", 500).outcome, ApplyOutcome::kApplied);
  auto d = store_->Get(shard_, 1, "ghost");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->tombstone);
  EXPECT_EQ(d->version.hlc, 500u);
  EXPECT_EQ(Put("ghost", 400, R"({"back":true})").outcome, ApplyOutcome::kStoredIsNewer);
  EXPECT_EQ(Put("ghost", 600, R"({"back":true})").outcome, ApplyOutcome::kApplied);
  auto st = store_->Stats(shard_);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->documents, 1u);
  EXPECT_EQ(st->tombstones, 0u);
}

TEST_F(RedisStoreTest, FencedMutationsAndReadsAreRefused) {
  Put("a", 100, R"({"x":1})");
  auto f = store_->SetFence(shard_, 5);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->seq, 1u);
  ApplyResult r = Put("a", 200, R"({"x":2})", /*epoch=*/4);
  EXPECT_EQ(r.outcome, ApplyOutcome::kFenced);
  EXPECT_EQ(r.fence, 5u);
  EXPECT_EQ(store_->Get(shard_, kAnyEpoch, "a")->body, R"({"x":1})");
}

TEST_F(RedisStoreTest, FencedReadAtStaleEpochButAnyEpochPasses) {
  Put("a", 100, R"({"x":1})");
  ASSERT_TRUE(store_->SetFence(shard_, 5).ok());
  EXPECT_EQ(store_->Get(shard_, 4, "a").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Get(shard_, kAnyEpoch, "a").ok());
  EXPECT_TRUE(store_->Get(shard_, 5, "a").ok());
  EXPECT_EQ(store_->Scan(shard_, 4, "", 10).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Put("a", 200, R"({"x":2})", 5).outcome, ApplyOutcome::kApplied);
}

TEST_F(RedisStoreTest, FenceNeverLowersAndReturnsSeqAtThatInstant) {
  Put("a", 1, "{}");
  Put("b", 1, "{}");
  auto f1 = store_->SetFence(shard_, 9);
  ASSERT_TRUE(f1.ok());
  EXPECT_EQ(f1->seq, 2u);
  EXPECT_FALSE(f1->incarnation.empty());
  auto f2 = store_->SetFence(shard_, 3);
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ(*store_->GetFence(shard_), 9u);
}

TEST_F(RedisStoreTest, ScanIsInKeyOrderWithTombstonesAndPages) {
  for (const char* pk : {"m", "b", "z", "a", "c"}) Put(pk, 10, "{}");
  Del("c", 20);
  std::vector<std::string> seen;
  std::string cursor;
  for (int i = 0; i < 10; ++i) {
    auto page = store_->Scan(shard_, 1, cursor, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    for (const auto& d : *page) seen.push_back(d.pk + (d.tombstone ? "!" : ""));
    cursor = page->back().pk;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c!", "m", "z"}));
}

TEST_F(RedisStoreTest, ChangedSinceIsOneRangeReadInSeqOrder) {
  Put("a", 10, "{}");  // seq 1
  Put("b", 10, "{}");  // seq 2
  const uint64_t w = store_->CurrentSeq(shard_)->seq;
  Put("c", 10, "{}");  // seq 3
  Del("a", 20);        // seq 4
  Put("b", 5, "{}");   // refused: no seq
  auto ch = store_->ChangedSince(shard_, 1, w, 0, 100);
  ASSERT_TRUE(ch.ok()) << ch.status();
  ASSERT_EQ(ch->size(), 2u);
  EXPECT_EQ((*ch)[0].pk, "c");
  EXPECT_EQ((*ch)[1].pk, "a");
  EXPECT_TRUE((*ch)[1].tombstone);
  auto bounded = store_->ChangedSince(shard_, 1, w, 3, 100);
  ASSERT_TRUE(bounded.ok());
  ASSERT_EQ(bounded->size(), 1u);
  EXPECT_EQ((*bounded)[0].pk, "c");
}

TEST_F(RedisStoreTest, DeleteShardKeepsFenceAndSeqAndRefusesStaleEpoch) {
  for (int i = 0; i < 2500; ++i) Put("k" + std::to_string(i), 10, "{}");
  ASSERT_TRUE(store_->SetFence(shard_, 4).ok());
  EXPECT_EQ(store_->DeleteShard(shard_, 3, {}).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->DeleteShard(shard_, 4, {}).ok());
  EXPECT_TRUE(store_->Scan(shard_, kAnyEpoch, "", 10)->empty());
  EXPECT_EQ(*store_->GetFence(shard_), 4u);
  EXPECT_EQ(store_->CurrentSeq(shard_)->seq, 2500u);
  EXPECT_EQ(store_->Stats(shard_)->documents, 0u);
  // Other shards are untouched.
  ShardKey other{"products", 1, 4};
  ASSERT_TRUE(store_->Apply(other, 1, {Mutation{"x", Version{1, 1}, false, "{}", 0}}).ok());
  ASSERT_TRUE(store_->DeleteShard(shard_, 4, {}).ok());
  EXPECT_EQ(store_->Scan(other, 1, "", 10)->size(), 1u);
}

// A stale holder's wipe already under way (DESIGN §6): once another holder
// raised the fence, the node refuses its next chunk; what it deleted before stays
// deleted, nothing after.
TEST_F(RedisStoreTest, DeleteShardStopsAtAFenceRaisedBetweenChunks) {
  Fill(2500, /*tombstones=*/false);
  ASSERT_TRUE(store_->SetFence(shard_, 4).ok());
  auto new_holder = RedisStore::Create(node_->address(), StoreOptions{});
  ASSERT_TRUE(new_holder.ok());
  int checks = 0;
  absl::Status s = store_->DeleteShard(shard_, 4, [&] {
    if (++checks == 2) {
      EXPECT_TRUE((*new_holder)->SetFence(shard_, 5).ok());
    }
    return false;
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(Left(), 1500u);  // one chunk of 1000 deleted
}

TEST_F(RedisStoreTest, DeleteShardChecksCancellationBetweenChunks) {
  Fill(2500, /*tombstones=*/false);
  int checks = 0;
  absl::Status s = store_->DeleteShard(shard_, 4, [&] { return ++checks == 2; });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_EQ(Left(), 1500u);
}

TEST_F(RedisStoreTest, PurgeTombstonesIsRefusedOnceTheFenceIsAboveItsEpoch) {
  Fill(2500, /*tombstones=*/true);
  ASSERT_TRUE(store_->SetFence(shard_, 4).ok());
  auto n = store_->PurgeTombstones(shard_, 3, int64_t{1} << 50, {});
  EXPECT_EQ(n.status().code(), absl::StatusCode::kFailedPrecondition) << n.status();
  EXPECT_EQ(store_->Stats(shard_)->tombstones, 2500u);
  // A purge under way stops at the page after another holder raised the fence.
  auto new_holder = RedisStore::Create(node_->address(), StoreOptions{});
  ASSERT_TRUE(new_holder.ok());
  int checks = 0;
  n = store_->PurgeTombstones(shard_, 4, int64_t{1} << 50, [&] {
    if (++checks == 2) {
      EXPECT_TRUE((*new_holder)->SetFence(shard_, 5).ok());
    }
    return false;
  });
  EXPECT_EQ(n.status().code(), absl::StatusCode::kFailedPrecondition) << n.status();
  EXPECT_EQ(store_->Stats(shard_)->tombstones, 1500u);  // one page of 1000 purged
  checks = 0;
  n = store_->PurgeTombstones(shard_, 5, int64_t{1} << 50, [&] { return ++checks == 2; });
  EXPECT_EQ(n.status().code(), absl::StatusCode::kCancelled) << n.status();
  EXPECT_EQ(store_->Stats(shard_)->tombstones, 500u);
}

TEST_F(RedisStoreTest, IncarnationIsStableAndChangesWhenNodeIsWiped) {
  auto a = store_->Incarnation();
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*store_->Incarnation(), *a);
  ASSERT_TRUE(node_->WipeRestart().ok());
  // The pool reconnects after the broken connection.
  absl::StatusOr<std::string> b = store_->Incarnation();
  for (int i = 0; i < 3 && !b.ok(); ++i) b = store_->Incarnation();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(*b, *a);
}

// The fence and the seq carry the incarnation they were read under, in the same
// round trip; on a wiped node whichever call comes first creates it.
TEST_F(RedisStoreTest, FenceAndCurrentSeqCarryTheNodesIncarnation) {
  ASSERT_TRUE(node_->WipeRestart().ok());
  absl::StatusOr<SeqPosition> fenced = store_->SetFence(shard_, 5);
  for (int i = 0; i < 3 && !fenced.ok(); ++i) fenced = store_->SetFence(shard_, 5);
  ASSERT_TRUE(fenced.ok()) << fenced.status();
  EXPECT_FALSE(fenced->incarnation.empty());
  EXPECT_EQ(*store_->Incarnation(), fenced->incarnation);
  EXPECT_EQ(store_->CurrentSeq(shard_)->incarnation, fenced->incarnation);

  ASSERT_TRUE(node_->WipeRestart().ok());
  absl::StatusOr<SeqPosition> seq = store_->CurrentSeq(shard_);
  for (int i = 0; i < 3 && !seq.ok(); ++i) seq = store_->CurrentSeq(shard_);
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_NE(seq->incarnation, fenced->incarnation);
  EXPECT_EQ(seq->seq, 0u);
  EXPECT_EQ(store_->SetFence(shard_, 6)->incarnation, seq->incarnation);
  EXPECT_EQ(*store_->Incarnation(), seq->incarnation);
}

TEST_F(RedisStoreTest, StatsCountDocumentsBytesTombstones) {
  Put("a", 1, R"({"x":1})");
  Put("b", 1, R"({"y":22})");
  Put("a", 2, R"({})");
  Del("b", 3);
  Del("c", 3);
  auto st = store_->Stats(shard_);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->documents, 1u);
  EXPECT_EQ(st->bytes, 2u);
  EXPECT_EQ(st->tombstones, 2u);
}

TEST_F(RedisStoreTest, PurgeTombstonesAppliedBeforeBound) {
  Put("a", 1, "{}");
  Del("b", 3);
  auto n = store_->PurgeTombstones(shard_, 1, /*applied_before_ms=*/0, {});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  n = store_->PurgeTombstones(shard_, 1, int64_t{1} << 50, {});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(store_->Get(shard_, 1, "b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Get(shard_, 1, "a").ok());
}

TEST_F(RedisStoreTest, ExpiryIsStoredAsMetadata) {
  ASSERT_TRUE(store_->Apply(shard_, 1, {Mutation{"e", Version{5, 1}, false, "{}", 1234}}).ok());
  EXPECT_EQ(store_->Get(shard_, 1, "e")->expires_at_ms, 1234);
}

TEST_F(RedisStoreTest, UnreachableNodeIsUnavailable) {
  ASSERT_TRUE(node_->Kill().ok());
  auto r = store_->Apply(shard_, 1, {Mutation{"a", Version{1, 1}, false, "{}", 0}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RedisStoreTest, ScriptsAreReloadedAfterScriptFlush) {
  Put("a", 1, "{}");
  ASSERT_TRUE(node_->Command({"SCRIPT", "FLUSH"}).ok());
  EXPECT_EQ(Put("a", 2, "{}").outcome, ApplyOutcome::kApplied);
}

TEST_F(RedisStoreTest, CapacityIsMaxmemoryAndUsedMemory) {
  auto unset = store_->Capacity();
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_EQ(unset->capacity_bytes, 0u);  // no maxmemory: unknown
  EXPECT_GT(unset->used_bytes, 0u);
  ASSERT_TRUE(node_->Command({"CONFIG", "SET", "maxmemory", "64mb"}).ok());
  auto set = store_->Capacity();
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->capacity_bytes, 64u << 20);
  EXPECT_GT(set->used_bytes, 0u);
}

TEST_F(RedisStoreTest, DurabilityConfigIsWhatConfigGetSays) {
  auto durable = store_->DurabilityConfig();
  ASSERT_TRUE(durable.ok()) << durable.status();
  EXPECT_EQ(*durable, (std::map<std::string, std::string>{{"appendonly", "yes"},
                                                          {"appendfsync", "always"},
                                                          {"maxmemory-policy", "noeviction"}}));
  ASSERT_TRUE(node_->Command({"CONFIG", "SET", "appendfsync", "everysec"}).ok());
  ASSERT_TRUE(node_->Command({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"}).ok());
  auto lax = store_->DurabilityConfig();
  ASSERT_TRUE(lax.ok()) << lax.status();
  EXPECT_EQ(lax->at("appendfsync"), "everysec");
  EXPECT_EQ(lax->at("maxmemory-policy"), "allkeys-lru");
  ASSERT_TRUE(node_->Kill().ok());
  EXPECT_EQ(store_->DurabilityConfig().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace miroir
