// WritePath against real redis-server nodes: one version on every owner, the
// quorum rule with nodes down, re-stamp on stored-is-newer, fenced -> refresh ->
// re-route, paused shards, the lease gate, per-item errors.
#include "worker/write_path.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "common/route_sets.h"
#include "common/routing.h"
#include "harness/redis_node.h"
#include "harness/tcp_proxy.h"
#include "harness/temp_dir.h"
#include "tests/worker/view_builder.h"
#include "worker/stores/redis_store.h"
#include "worker/view_change.h"

namespace miroir {
namespace {

using testing::GroupMap;
using testing::MakeView;
using testing::RedisNode;
using testing::TempDir;

// The coordinator's side as the write path sees it: a lease flag, a view served
// on refresh, recorded misses.
class TestLink : public CoordinatorLink {
 public:
  explicit TestLink(Router* router) : router_(router) {}
  bool LeaseValid() const override { return lease; }
  void RefreshView(uint64_t min_epoch) override {
    ++refreshes;
    if (next && next->epoch() >= min_epoch) router_->Apply(*next);
  }
  void ReportMiss(const std::string& node, const std::string&, uint64_t, uint32_t) override {
    absl::MutexLock l(&mu);
    misses.push_back(node);
  }
  std::atomic<bool> lease{true};
  std::optional<v1::ClusterView> next;
  std::atomic<int> refreshes{0};
  absl::Mutex mu;
  std::vector<std::string> misses;

 private:
  Router* router_;
};

class WritePathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 4; ++i) {
      auto n = RedisNode::Start(dir_.Subdir("r" + std::to_string(i)));
      ASSERT_TRUE(n.ok()) << n.status();
      addresses_["r" + std::to_string(i)] = (*n)->address();
      nodes_.push_back(std::move(*n));
    }
  }

  void Init(const GroupMap& owners, uint32_t rf, WritePathOptions o = {}) {
    router_.Apply(MakeView(1, addresses_, "products", kShards, rf, owners));
    StoreOptions so;
    so.op_timeout_ms = 500;
    so.connect_timeout_ms = 300;
    stores_ = std::make_unique<NodeStores>(so);
    path_ = std::make_unique<WritePath>(&router_, stores_.get(), &hlc_, &clock_, &pool_, &inflight_,
                                        &link_, o);
  }

  v1::WriteItem Put(const std::string& pk, const std::string& body, uint64_t after = 0,
                    const std::string& index = "products") {
    v1::WriteItem it;
    it.mutable_put()->set_index(index);
    it.mutable_put()->set_pk(pk);
    it.mutable_put()->set_body(body);
    it.set_after_version(after);
    return it;
  }
  std::vector<v1::WriteAck> Write(const std::vector<v1::WriteItem>& items) {
    std::vector<const v1::WriteItem*> ptrs;
    for (const auto& i : items) ptrs.push_back(&i);
    return path_->Write(ptrs);
  }
  absl::StatusOr<StoredDoc> Read(const std::string& node, const std::string& pk) {
    auto s = RedisStore::Create(addresses_[node], StoreOptions{});
    if (!s.ok()) return s.status();
    return (*s)->Get(ShardKey{"products", 1, ShardForKey(pk, kShards)}, kAnyEpoch, pk);
  }
  std::unique_ptr<RedisStore> Direct(const std::string& node) {
    return *RedisStore::Create(addresses_[node], StoreOptions{});
  }

  static constexpr uint32_t kShards = 8;
  TempDir dir_{"write-path"};
  std::vector<std::unique_ptr<RedisNode>> nodes_;
  std::map<std::string, std::string> addresses_;
  Router router_;
  ManualClock clock_{1'700'000'000'000};
  HybridClock hlc_{&clock_, 42};
  InflightTracker inflight_;  // outlives the pool: a late request still ends its entry
  ThreadPool pool_{4};
  TestLink link_{&router_};
  std::unique_ptr<NodeStores> stores_;
  std::unique_ptr<WritePath> path_;
};

TEST_F(WritePathTest, Rg2Rf2WriteReachesEveryOwnerWithOneVersion) {
  Init({{"g0", {"r0", "r1"}}, {"g1", {"r2", "r3"}}}, 2);
  auto acks = Write({Put("user:1", R"({"n":1})"), Put("user:2", R"({"n":2})")});
  ASSERT_EQ(acks.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const std::string pk = "user:" + std::to_string(i + 1);
    ASSERT_EQ(acks[i].code(), 0u) << acks[i].error();
    EXPECT_TRUE(acks[i].degraded_groups().empty());
    EXPECT_EQ(acks[i].writer(), 42u);
    EXPECT_EQ(acks[i].epoch(), 1u);
    EXPECT_EQ(acks[i].shard(), ShardForKey(pk, kShards));
    for (const char* n : {"r0", "r1", "r2", "r3"}) {
      auto d = Read(n, pk);
      ASSERT_TRUE(d.ok()) << n << ": " << d.status();
      EXPECT_EQ(d->version, (Version{acks[i].version(), 42})) << n;
    }
  }
  EXPECT_NE(acks[0].version(), acks[1].version());
}

TEST_F(WritePathTest, VersionIsAboveAfterVersionToken) {
  Init({{"g0", {"r0"}}}, 1);
  const uint64_t token = Version::Pack(1'800'000'000'000, 5);  // far ahead of our clock
  auto acks = Write({Put("k", "{}", token)});
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_GT(acks[0].version(), token);
}

TEST_F(WritePathTest, RestampsAboveAStoredNewerVersionOnEveryTarget) {
  Init({{"g0", {"r0", "r1"}}}, 2);
  // r1 holds a version from a writer whose clock is an hour ahead.
  const Version ahead{Version::Pack(clock_.NowMs() + 3'600'000, 0), 7};
  auto r = Direct("r1")->Apply(ShardKey{"products", 1, ShardForKey("k", kShards)}, 1,
                               {Mutation{"k", ahead, false, R"({"old":true})", 0}});
  ASSERT_TRUE(r.ok());
  auto acks = Write({Put("k", R"({"new":true})")});
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_GT(acks[0].version(), ahead.hlc);
  EXPECT_GE(path_->counters().restamps.load(), 1u);
  for (const char* n : {"r0", "r1"}) {
    auto d = Read(n, "k");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->version.hlc, acks[0].version()) << n;
    EXPECT_EQ(d->body, R"({"new":true})") << n;
  }
}

TEST_F(WritePathTest, FencedNodeTriggersRefreshAndReRouteAtNewEpoch) {
  Init({{"g0", {"r0"}}}, 1);
  const uint32_t shard = ShardForKey("k", kShards);
  ASSERT_TRUE(Direct("r0")->SetFence(ShardKey{"products", 1, shard}, 5).ok());
  // Epoch 5 routes the key to r1 instead.
  link_.next = MakeView(5, addresses_, "products", kShards, 1, {{"g0", {"r1"}}});
  auto acks = Write({Put("k", R"({"v":1})")});
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_EQ(acks[0].epoch(), 5u);
  EXPECT_GE(link_.refreshes.load(), 1);
  EXPECT_EQ(Read("r0", "k").status().code(), absl::StatusCode::kNotFound)
      << "the fenced node must not have taken the stale write";
  EXPECT_TRUE(Read("r1", "k").ok());
}

// The write deadline is kept on the injected clock: more than the deadline passes
// in real time and the write keeps refreshing; it fails once the clock reaches
// the deadline. (Each round may take the real time the clock says is left, so
// the clock is not set just short of the deadline: a round given 1 ms would
// time out against the node and fail the item on its quorum instead.)
TEST_F(WritePathTest, FencedWithoutNewerViewFailsAtTheClocksDeadlineNotBefore) {
  WritePathOptions o;
  o.write_deadline = absl::Seconds(2);
  Init({{"g0", {"r0"}}}, 1, o);
  ASSERT_TRUE(Direct("r0")->SetFence(ShardKey{"products", 1, ShardForKey("k", kShards)}, 9).ok());
  std::atomic<bool> done{false};
  std::vector<v1::WriteAck> acks;
  std::thread writer([&] {
    acks = Write({Put("k", "{}")});
    done = true;
  });
  auto refreshes_past = [&](int n) {
    for (int i = 0; i < 2000 && link_.refreshes.load() < n && !done.load(); ++i) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    return link_.refreshes.load() >= n;
  };
  EXPECT_TRUE(refreshes_past(5));
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_FALSE(done.load()) << "the deadline was judged on real time";
  clock_.Advance(1'000);
  EXPECT_TRUE(refreshes_past(link_.refreshes.load() + 2));
  EXPECT_FALSE(done.load()) << "failed with half its deadline left on the clock";
  clock_.Advance(1'000);
  writer.join();
  EXPECT_EQ(acks[0].code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_NE(acks[0].error().find("deadline"), std::string::npos) << acks[0].error();
  EXPECT_EQ(Read("r0", "k").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(WritePathTest, OneGroupDownIsDegradedBothDownIsUnavailable) {
  WritePathOptions o;
  o.write_deadline = absl::Seconds(2);
  Init({{"g0", {"r0"}}, {"g1", {"r1"}}}, 1, o);
  ASSERT_TRUE(nodes_[1]->Kill().ok());
  auto acks = Write({Put("a", "{}")});
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_EQ(
      std::vector<std::string>(acks[0].degraded_groups().begin(), acks[0].degraded_groups().end()),
      std::vector<std::string>{"g1"});
  {
    absl::MutexLock l(&link_.mu);
    EXPECT_EQ(link_.misses, std::vector<std::string>{"r1"});
  }
  ASSERT_TRUE(nodes_[0]->Kill().ok());
  acks = Write({Put("b", "{}")});
  EXPECT_EQ(acks[0].code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_NE(acks[0].error().find("quorum"), std::string::npos) << acks[0].error();
}

TEST_F(WritePathTest, Rf3ToleratesOneNodeDownPerGroup) {
  Init({{"g0", {"r0", "r1", "r2"}}}, 3);
  ASSERT_TRUE(nodes_[2]->Kill().ok());
  auto acks = Write({Put("a", "{}")});
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_TRUE(acks[0].degraded_groups().empty());
  ASSERT_TRUE(nodes_[1]->Kill().ok());
  acks = Write({Put("b", "{}")});
  EXPECT_EQ(acks[0].code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
}

TEST_F(WritePathTest, BadItemsFailAloneAndTheRestOfTheBatchApplies) {
  Init({{"g0", {"r0"}}}, 1);
  v1::WriteItem del;
  del.mutable_delete_()->set_index("products");
  del.mutable_delete_()->set_pk("gone");
  auto acks = Write({Put("ok1", "{}"), Put("bad", "{oops"), Put("bad2", "[]"), Put("", "{}"),
                     Put(std::string(512, 'p'), "{}"), Put("bad3", R"({"_miroir_v":1})"),
                     Put("k", "{}", 0, "nosuch"), del, Put("ok2", "{}")});
  const auto kInvalid = static_cast<uint32_t>(grpc::StatusCode::INVALID_ARGUMENT);
  std::vector<uint32_t> codes;
  for (const auto& a : acks) codes.push_back(a.code());
  EXPECT_EQ(codes,
            (std::vector<uint32_t>{0, kInvalid, kInvalid, kInvalid, kInvalid, kInvalid,
                                   static_cast<uint32_t>(grpc::StatusCode::NOT_FOUND), 0, 0}));
  EXPECT_TRUE(Read("r0", "ok1").ok());
  EXPECT_TRUE(Read("r0", "ok2").ok());
  EXPECT_TRUE(Read("r0", "gone")->tombstone) << "a delete of an absent key writes a tombstone";
  EXPECT_EQ(Read("r0", "bad").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(WritePathTest, NoLeaseRefusesWrites) {
  Init({{"g0", {"r0"}}}, 1);
  link_.lease = false;
  auto acks = Write({Put("k", "{}")});
  EXPECT_EQ(acks[0].code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_EQ(Read("r0", "k").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(WritePathTest, PausedShardHoldsUntilReleasedByNewerEpoch) {
  Init({{"g0", {"r0"}}}, 1);
  v1::ClusterView paused = MakeView(2, addresses_, "products", kShards, 1, {{"g0", {"r0"}}});
  for (auto& r : *paused.mutable_generations(0)->mutable_routes()) {
    r.set_state(v1::SHARD_PAUSED);
    r.set_pause_deadline_ms(clock_.NowMs() + 30'000);
  }
  router_.Apply(paused);
  std::vector<v1::WriteAck> acks;
  std::thread writer([&] { acks = Write({Put("k", "{}")}); });
  // Wait until the item is held, then release at epoch 3 routed to r1.
  for (int i = 0; i < 500 && path_->counters().held.load() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(path_->counters().held.load(), 1u);
  router_.Apply(MakeView(3, addresses_, "products", kShards, 1, {{"g0", {"r1"}}}));
  writer.join();
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_EQ(acks[0].epoch(), 3u);
  EXPECT_TRUE(Read("r1", "k").ok());
  EXPECT_EQ(Read("r0", "k").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(path_->counters().held.load(), 0u);
}

TEST_F(WritePathTest, LeaseLapsingWhileHeldStopsTheWrite) {
  Init({{"g0", {"r0"}}}, 1);
  auto paused_view = [&](uint64_t epoch) {
    v1::ClusterView v = MakeView(epoch, addresses_, "products", kShards, 1, {{"g0", {"r0"}}});
    for (auto& r : *v.mutable_generations(0)->mutable_routes()) {
      r.set_state(v1::SHARD_PAUSED);
      r.set_pause_deadline_ms(clock_.NowMs() + 30'000);
    }
    return v;
  };
  router_.Apply(paused_view(2));
  std::vector<v1::WriteAck> acks;
  std::thread writer([&] { acks = Write({Put("k", "{}")}); });
  for (int i = 0; i < 500 && path_->counters().held.load() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  link_.lease = false;
  router_.Apply(paused_view(3));  // wakes the held write
  writer.join();
  EXPECT_EQ(acks[0].code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_NE(acks[0].error().find("lease"), std::string::npos) << acks[0].error();
  EXPECT_EQ(path_->counters().held.load(), 0u);
  EXPECT_EQ(Read("r0", "k").status().code(), absl::StatusCode::kNotFound);
}

// The pause deadline is judged on the injected clock: the manual clock reads
// 2023, so the deadline is long past in real time, and the write is still held
// until the clock reaches it.
TEST_F(WritePathTest, PausedShardIsHeldUntilTheClockPassesItsPauseDeadline) {
  Init({{"g0", {"r0"}}}, 1);
  const int64_t pause_deadline = clock_.NowMs() + 1'000;
  ASSERT_LT(pause_deadline, absl::ToUnixMillis(absl::Now()));
  v1::ClusterView paused = MakeView(2, addresses_, "products", kShards, 1, {{"g0", {"r0"}}});
  for (auto& r : *paused.mutable_generations(0)->mutable_routes()) {
    r.set_state(v1::SHARD_PAUSED);
    r.set_pause_deadline_ms(pause_deadline);
  }
  router_.Apply(paused);
  std::atomic<bool> done{false};
  std::vector<v1::WriteAck> acks;
  std::thread writer([&] {
    acks = Write({Put("k", "{}")});
    done = true;
  });
  for (int i = 0; i < 500 && path_->counters().held.load() == 0 && !done.load(); ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(path_->counters().held.load(), 1u);
  EXPECT_FALSE(done.load()) << "the pause deadline was judged on real time";
  clock_.Advance(1'000);
  writer.join();
  EXPECT_EQ(acks[0].code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_NE(acks[0].error().find("paused"), std::string::npos) << acks[0].error();
  EXPECT_EQ(Read("r0", "k").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(path_->counters().held.load(), 0u);
}

TEST_F(WritePathTest, DualWriteSendsToNewOwnersButAcksOnOldOnly) {
  Init({{"g0", {"r0"}}}, 1);
  v1::ClusterView dual = MakeView(2, addresses_, "products", kShards, 1, {{"g0", {"r0"}}});
  for (auto& r : *dual.mutable_generations(0)->mutable_routes()) {
    r.set_state(v1::SHARD_DUAL_WRITE);
    testing::FillGroups({{"g0", {"r0", "r1"}}}, r.mutable_write_set());
  }
  router_.Apply(dual);
  auto acks = Write({Put("k", "{}")});
  ASSERT_EQ(acks[0].code(), 0u);
  EXPECT_EQ(Read("r1", "k")->version.hlc, acks[0].version());
  ASSERT_TRUE(nodes_[0]->Kill().ok());
  acks = Write({Put("k2", "{}")});
  EXPECT_EQ(acks[0].code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE))
      << "the joining node alone does not make a quorum";
}

TEST_F(WritePathTest, AShardsDrainWaitsOnlyForTheNodesThatHoldIt) {
  Init({{"g0", {"r0"}}}, 1);
  // Even shards on r0, odd shards on r1.
  v1::ClusterView split = MakeView(2, addresses_, "products", kShards, 1, {{"g0", {"r0"}}});
  for (auto& r : *split.mutable_generations(0)->mutable_routes()) {
    if (r.shard() % 2 == 0) continue;
    r.clear_owners();
    r.clear_write_set();
    r.clear_acking_set();
    testing::FillGroups({{"g0", {"r1"}}}, r.mutable_owners());
    testing::FillGroups({{"g0", {"r1"}}}, r.mutable_write_set());
    testing::FillGroups({{"g0", {"r1"}}}, r.mutable_acking_set());
  }
  router_.Apply(split);
  // One key whose shard lives on r0 and one whose shard lives on r1.
  auto snap = router_.Current();
  std::map<std::string, std::pair<std::string, std::string>> on;  // node -> (pk, shard name)
  for (int i = 0; i < 1000 && on.size() < 2; ++i) {
    const std::string pk = "k" + std::to_string(i);
    auto r = snap->Route("products", pk);
    ASSERT_TRUE(r.ok()) << r.status();
    const GenerationTarget& g = r->targets[r->live];
    const std::string node = WriteSet(*g.route)[0].nodes(0);
    on.emplace(node, std::make_pair(pk, ShardKeyName(g.index, g.generation, g.shard)));
  }
  ASSERT_EQ(on.size(), 2u);
  // Named copies, not structured bindings: clang 14 cannot capture those in the
  // lambda below.
  const std::string pk0 = on["r0"].first, shard0 = on["r0"].second;
  const std::string pk1 = on["r1"].first, shard1 = on["r1"].second;
  ASSERT_NE(shard0, shard1);

  // r1 answers nothing until it is continued; r0 answers at once.
  ASSERT_TRUE(nodes_[1]->Stop().ok());
  std::vector<v1::WriteAck> acks;
  std::thread writer([&] { acks = Write({Put(pk0, "{}"), Put(pk1, "{}")}); });
  bool r1_in_flight = false;
  for (int i = 0; i < 400 && !r1_in_flight; ++i) {
    r1_in_flight = !inflight_.NoneBelowTouching(3, {shard1});
    if (!r1_in_flight) absl::SleepFor(absl::Milliseconds(1));
  }
  // The epoch-3 drain of r0's shard ends when r0 has answered, while the same
  // round still waits for r1: a cutover on r0 does not pay for the slow node.
  bool r0_drained = false;
  for (int i = 0; i < 400 && r1_in_flight && !r0_drained; ++i) {
    r0_drained = inflight_.NoneBelowTouching(3, {shard0});
    if (!r0_drained) absl::SleepFor(absl::Milliseconds(1));
  }
  const bool r1_still_in_flight = !inflight_.NoneBelowTouching(3, {shard1});
  ASSERT_TRUE(nodes_[1]->Cont().ok());
  writer.join();
  EXPECT_TRUE(r1_in_flight);
  EXPECT_TRUE(r0_drained);
  EXPECT_TRUE(r1_still_in_flight) << "r1 was stopped: its request cannot have answered";
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_TRUE(Read("r0", pk0).ok());
  // Every write has settled once the round is over.
  EXPECT_TRUE(inflight_.NoneBelow(3));
}

// DESIGN §4, slow nodes: a stopped target is suspected after a run of timeouts
// and not waited for (its misses are reported), gets at most max_inflight
// outstanding sends, and is cleared by a probe once it answers again.
TEST_F(WritePathTest, StoppedNodeIsSuspectedNotWaitedForAndClearedByAProbe) {
  WritePathOptions o;
  o.write_deadline = absl::Seconds(30);
  o.slow.suspect_timeout = absl::Milliseconds(100);
  o.slow.suspect_after = 2;
  o.slow.max_inflight = 1;
  o.slow.probe_interval = absl::Milliseconds(50);
  Init({{"g0", {"r0", "r1"}}, {"g1", {"r2", "r3"}}}, 2, o);
  ASSERT_TRUE(nodes_[1]->Stop().ok());
  auto acks = Write({Put("a", "{}"), Put("b", "{}")});
  // Acknowledged by g1 while r1 is still stopped (the store op timeout is 500 ms:
  // the round ended on the suspicion, not on r1's error).
  const bool suspected_at_ack = path_->health()->Suspected("r1");
  for (const auto& a : acks) {
    ASSERT_EQ(a.code(), 0u) << a.error();
    EXPECT_EQ(std::vector<std::string>(a.degraded_groups().begin(), a.degraded_groups().end()),
              std::vector<std::string>{"g0"});
  }
  EXPECT_TRUE(suspected_at_ack);
  EXPECT_GE(path_->health()->counters().straggler_sends.load(), 1u);
  {
    absl::MutexLock l(&link_.mu);
    EXPECT_NE(std::find(link_.misses.begin(), link_.misses.end(), "r1"), link_.misses.end());
  }
  // While the first send is outstanding, further sends to r1 are not made.
  for (int i = 0; i < 5; ++i) {
    auto more = Write({Put("c" + std::to_string(i), "{}")});
    ASSERT_EQ(more[0].code(), 0u) << more[0].error();
  }
  EXPECT_GE(path_->health()->counters().skipped_sends.load(), 1u);
  ASSERT_TRUE(nodes_[1]->Cont().ok());
  // Writes keep coming; a probe that answers in time clears the suspicion.
  bool cleared = false;
  for (int i = 0; i < 200 && !cleared; ++i) {
    Write({Put("d", "{}")});
    cleared = !path_->health()->Suspected("r1");
    if (!cleared) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(cleared);
  EXPECT_EQ(path_->health()->counters().clears.load(), 1u);
  acks = Write({Put("e", "{}")});
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_TRUE(acks[0].degraded_groups().empty());
  auto d = Read("r1", "e");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->version.hlc, acks[0].version());
}

// A suspected target is given up on only when some group's quorum can be made
// without it: here (one group, RF 2) the quorum needs r1, so the write waits for
// it past straggler_bound and is acknowledged, not degraded, once r1 answers.
TEST_F(WritePathTest, ASuspectedTargetTheQuorumNeedsIsWaitedFor) {
  WritePathOptions o;
  o.write_deadline = absl::Seconds(30);
  o.slow.suspect_timeout = absl::Milliseconds(100);
  o.slow.suspect_after = 2;
  o.slow.max_inflight = 0;                   // nothing to a suspected node, unless needed
  o.slow.probe_interval = absl::Minutes(5);  // r1 stays suspected for the test
  Init({{"g0", {"r0", "r1"}}}, 2, o);
  ASSERT_TRUE(nodes_[1]->Stop().ok());
  std::vector<v1::WriteAck> acks;
  std::thread writer([&] { acks = Write({Put("a", "{}")}); });
  // Continued once it is suspected (before the store's 500 ms op timeout).
  bool suspected = false;
  for (int i = 0; i < 2000 && !suspected; ++i) {
    suspected = path_->health()->Suspected("r1");
    if (!suspected) absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_TRUE(nodes_[1]->Cont().ok());
  writer.join();
  ASSERT_TRUE(suspected);
  ASSERT_EQ(acks.size(), 1u);
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_TRUE(acks[0].degraded_groups().empty());
  EXPECT_EQ(path_->health()->counters().straggler_sends.load(), 0u);
  // Still suspected and at its cap of outstanding sends, r1 is sent to anyway:
  // the quorum cannot be made without it.
  ASSERT_TRUE(path_->health()->Suspected("r1"));
  acks = Write({Put("b", "{}")});
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_TRUE(acks[0].degraded_groups().empty());
  EXPECT_EQ(path_->health()->counters().skipped_sends.load(), 0u);
}

// A straggler's late "stored is newer" advances the HLC and is reported as a
// miss: r1 (behind a holding proxy) is suspected and the write acknowledged by
// g0; meanwhile r1 gets a newer version of the key; released, r1 answers
// "newer" late, and the next version this worker stamps is above it.
TEST_F(WritePathTest, AStragglersLateNewerAdvancesTheClockAndIsReported) {
  auto proxy = testing::TcpProxy::Start(nodes_[1]->port());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  addresses_["r1"] = (*proxy)->address();
  WritePathOptions o;
  o.write_deadline = absl::Seconds(30);
  o.slow.suspect_timeout = absl::Milliseconds(100);
  o.slow.probe_interval = absl::Minutes(5);
  Init({{"g0", {"r0"}}, {"g1", {"r1"}}}, 1, o);
  (*proxy)->Hold();
  auto acks = Write({Put("k", "{}")});
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  ASSERT_TRUE(path_->health()->Suspected("r1"));
  {
    absl::MutexLock l(&link_.mu);
    link_.misses.clear();
  }
  // A newer version of the key lands on r1 directly (another writer's).
  const Version newer{acks[0].version() + 1'000'000, 7};
  auto direct = *RedisStore::Create(nodes_[1]->address(), StoreOptions{});  // past the proxy
  auto applied = direct->Apply(ShardKey{"products", 1, ShardForKey("k", kShards)}, 1,
                               {Mutation{"k", newer, false, "{}", 0}});
  ASSERT_TRUE(applied.ok()) << applied.status();
  (*proxy)->Release();
  bool late = false;
  for (int i = 0; i < 500 && !late; ++i) {
    late = path_->health()->counters().late_newer.load() >= 1;
    if (!late) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(late);
  {
    absl::MutexLock l(&link_.mu);
    EXPECT_NE(std::find(link_.misses.begin(), link_.misses.end(), "r1"), link_.misses.end());
  }
  acks = Write({Put("other", "{}")});
  ASSERT_EQ(acks[0].code(), 0u) << acks[0].error();
  EXPECT_GT(acks[0].version(), newer.hlc);
}

// Every error ack carries the highest version sent for the item, so a client's
// next attempt (after_version) is stamped above one that may still land.
TEST_F(WritePathTest, ErrorAckCarriesTheHighestVersionSent) {
  WritePathOptions o;
  o.write_deadline = absl::Seconds(2);
  Init({{"g0", {"r0"}}}, 1, o);
  ASSERT_TRUE(nodes_[0]->Kill().ok());
  v1::WriteItem bad = Put("", "{}");
  auto acks = Write({Put("a", "{}", /*after=*/5'000'000'000'000), bad});
  ASSERT_EQ(acks[0].code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_GT(acks[0].version(), 5'000'000'000'000u) << "the stamped version that was sent";
  ASSERT_EQ(acks[1].code(), static_cast<uint32_t>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(acks[1].version(), 0u) << "nothing was sent";
}

}  // namespace
}  // namespace miroir
