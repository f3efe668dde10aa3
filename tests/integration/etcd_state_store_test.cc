// The StateStore contract, run against both implementations: the embedded
// SQLite file and etcd (a real etcd process on loopback, harness EtcdCluster).
// Then what only etcd has: fenced commits under a leader term, and the commit
// size limits of one etcd transaction.
#include "coordinator/etcd_state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>

#include "coordinator/cluster_state.h"
#include "coordinator/etcd_client.h"
#include "coordinator/etcd_leadership.h"
#include "coordinator/sqlite_state_store.h"
#include "harness/etcd_cluster.h"
#include "harness/temp_dir.h"

namespace miroir::coordinator {
namespace {

using ::miroir::testing::EtcdCluster;
using ::testing::HasSubstr;

// One etcd for the whole binary; every store gets a prefix of its own.
class EtcdEnv {
 public:
  static EtcdEnv& Get() {
    static EtcdEnv* env = new EtcdEnv();
    return *env;
  }
  EtcdClient* client() { return client_.get(); }
  EtcdCluster* cluster() { return cluster_.get(); }
  std::string NewPrefix() { return "/t" + std::to_string(++next_); }

 private:
  EtcdEnv() : dir_("etcd-store") {
    auto c = EtcdCluster::Start(dir_.path(), 1);
    if (!c.ok()) {
      ADD_FAILURE() << c.status();
      std::abort();
    }
    cluster_ = std::move(*c);
    auto client = EtcdClient::Connect(cluster_->endpoints(), absl::Seconds(5), absl::Seconds(5));
    if (!client.ok()) {
      ADD_FAILURE() << client.status();
      std::abort();
    }
    client_ = std::move(*client);
  }
  miroir::testing::TempDir dir_;
  std::unique_ptr<EtcdCluster> cluster_;
  std::unique_ptr<EtcdClient> client_;
  std::atomic<int> next_{0};
};

// Opens a store over the same durable state again (a "reopen" after a restart).
class StoreFactory {
 public:
  virtual ~StoreFactory() = default;
  virtual std::unique_ptr<StateStore> Open() = 0;
};

class SqliteFactory : public StoreFactory {
 public:
  std::unique_ptr<StateStore> Open() override {
    auto s = SqliteStateStore::Open(dir_.File("c.db"));
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(*s);
  }

 private:
  miroir::testing::TempDir dir_{"sqlite-store"};
};

// An etcd store that leads: it campaigned and commits under its term.
class EtcdFactory : public StoreFactory {
 public:
  EtcdFactory() : prefix_(EtcdEnv::Get().NewPrefix()) {}
  std::unique_ptr<StateStore> Open() override {
    EtcdClient* client = EtcdEnv::Get().client();
    auto store = std::make_unique<EtcdStateStore>(client, prefix_);
    leaderships_.push_back(
        std::make_unique<EtcdLeadership>(client, store->layout(), "test-leader", absl::Seconds(2)));
    // The previous "process" resigns: the new one wins at once.
    if (leaderships_.size() > 1) leaderships_[leaderships_.size() - 2]->Shutdown();
    auto term = leaderships_.back()->Campaign();
    EXPECT_TRUE(term.ok()) << term.status();
    store->SetTerm(*term);
    EXPECT_TRUE(store->Load().ok());
    return store;
  }

 private:
  std::string prefix_;
  std::vector<std::unique_ptr<EtcdLeadership>> leaderships_;
};

struct Backend {
  std::string name;
  std::function<std::unique_ptr<StoreFactory>()> make;
};

class StateStoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { factory_ = GetParam().make(); }
  std::unique_ptr<StoreFactory> factory_;
};

TEST_P(StateStoreContract, RoundTripAndReopen) {
  {
    auto store = factory_->Open();
    StateWrite w;
    w.Set(kKindNode, "r0", "node-bytes");
    w.Set(kKindMeta, "initialized", "1");
    w.events.push_back({7, "ev1"});
    w.events.push_back({8, "ev2"});
    w.epoch = 3;
    ASSERT_TRUE(store->Commit(w).ok());
    StateWrite w2;
    w2.Set(kKindNode, "r1", std::string("bin\0ary", 7));
    w2.Delete(kKindMeta, "initialized");
    w2.events.push_back({7, "ev3"});
    ASSERT_TRUE(store->Commit(w2).ok());
  }
  auto store = factory_->Open();
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->epoch, 3u);
  EXPECT_EQ(loaded->objects[kKindNode]["r0"], "node-bytes");
  EXPECT_EQ(loaded->objects[kKindNode]["r1"], std::string("bin\0ary", 7));
  EXPECT_FALSE(loaded->objects[kKindMeta].count("initialized"));
  auto ev = store->PlanEvents(7);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(*ev, (std::vector<std::string>{"ev1", "ev3"}));
  auto all = store->PlanEvents(0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (std::vector<std::string>{"ev1", "ev2", "ev3"}));
}

TEST_P(StateStoreContract, AuditRecordsAreKeptApartNewestFirstAcrossReopen) {
  {
    auto store = factory_->Open();
    StateWrite w;
    w.Set(kKindNode, "r0", "n");
    w.events.push_back({7, "ev1"});
    w.audit.push_back("a1");
    ASSERT_TRUE(store->Commit(w).ok());
    StateWrite only_audit;  // a call that changes no state (a reload, a backup)
    only_audit.audit.push_back("a2");
    ASSERT_TRUE(store->Commit(only_audit).ok());
    StateWrite w3;
    w3.events.push_back({7, "ev2"});
    w3.audit.push_back("a3");
    w3.audit.push_back("a4");
    ASSERT_TRUE(store->Commit(w3).ok());
  }
  auto store = factory_->Open();
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  // Audit records are not plan events (read below).
  auto ev = store->PlanEvents(0);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(*ev, (std::vector<std::string>{"ev1", "ev2"}));
  auto recent = store->RecentAudit(3);
  ASSERT_TRUE(recent.ok()) << recent.status();
  EXPECT_EQ(*recent, (std::vector<std::string>{"a4", "a3", "a2"}));
  // Appends after a reopen keep the order (etcd: the sequence resumes past audit keys).
  StateWrite w4;
  w4.audit.push_back("a5");
  ASSERT_TRUE(store->Commit(w4).ok());
  recent = store->RecentAudit(10);
  ASSERT_TRUE(recent.ok());
  EXPECT_EQ(*recent, (std::vector<std::string>{"a5", "a4", "a3", "a2", "a1"}));
  // And plan events after the audit-only commit go on in order too (Load reads
  // only the newest batch keys, not the history).
  auto again = factory_->Open();
  StateWrite w5;
  w5.events.push_back({7, "ev3"});
  ASSERT_TRUE(again->Commit(w5).ok());
  ev = again->PlanEvents(0);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(*ev, (std::vector<std::string>{"ev1", "ev2", "ev3"}));
}

TEST_P(StateStoreContract, AFailedCommitAppliesNothing) {
  auto store = factory_->Open();
  StateWrite w;
  w.epoch = 10;
  ASSERT_TRUE(store->Commit(w).ok());
  StateWrite bad;
  bad.Set(kKindNode, "r0", "x");
  bad.events.push_back({1, "e"});
  bad.epoch = 9;  // backwards: the whole write is refused
  auto st = store->Commit(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  auto loaded = factory_->Open()->Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->epoch, 10u);
  EXPECT_TRUE(loaded->objects[kKindNode].empty());
  auto none = factory_->Open()->PlanEvents(0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(StateStoreContract, RefusesAnEpochThatIsNotStrictlyNewer) {
  auto store = factory_->Open();
  StateWrite first;
  first.Set(kKindNode, "r0", "table-a");
  first.epoch = 5;
  ASSERT_TRUE(store->Commit(first).ok());
  StateWrite same;
  same.Set(kKindNode, "r0", "table-b");
  same.events.push_back({1, "e"});
  same.epoch = 5;
  auto st = store->Commit(same);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("epoch"));
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->epoch, 5u);
  EXPECT_EQ(loaded->objects[kKindNode]["r0"], "table-a");
  auto none = store->PlanEvents(0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  StateWrite plain;
  plain.Set(kKindNode, "r1", "x");
  EXPECT_TRUE(store->Commit(plain).ok());
  StateWrite next;
  next.epoch = 6;
  EXPECT_TRUE(store->Commit(next).ok());
}

TEST_P(StateStoreContract, ClusterStateSurvivesReload) {
  auto store = factory_->Open();
  ClusterState s;
  Change c;
  v1::Node n;
  n.set_id("r0");
  n.set_group("g0");
  n.set_status(v1::NODE_ACTIVE);
  c.nodes["r0"] = n;
  c.group_order = std::vector<std::string>{"g0"};
  c.initialized = true;
  v1::GenerationRoute g;
  g.set_index("p");
  g.set_generation(c.AllocId(s));
  g.set_shards(2);
  g.set_rf(1);
  g.set_role(v1::GENERATION_LIVE);
  c.generations[g.generation()] = g;
  v1::ShardRoute r;
  r.set_shard(1);
  r.set_state(v1::SHARD_DUAL_WRITE);
  c.routes[{g.generation(), 1}] = r;
  c.bump_epoch = true;
  ASSERT_TRUE(store->Commit(c.ToWrite(1)).ok());
  ApplyChange(c, 1, &s);
  auto loaded = factory_->Open()->Load();
  ASSERT_TRUE(loaded.ok());
  auto back = ClusterState::FromLoaded(*loaded);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->epoch, 1u);
  EXPECT_TRUE(back->initialized);
  EXPECT_EQ(back->next_id, s.next_id);
  EXPECT_EQ(BuildView(*back)->SerializeAsString(), BuildView(s)->SerializeAsString());
}

INSTANTIATE_TEST_SUITE_P(
    Backends, StateStoreContract,
    ::testing::Values(Backend{"sqlite", [] { return std::make_unique<SqliteFactory>(); }},
                      Backend{"etcd", [] { return std::make_unique<EtcdFactory>(); }}),
    [](const ::testing::TestParamInfo<Backend>& info) { return info.param.name; });

// ---- etcd only ----

// A leader that lost its term (another coordinator won after its lease went)
// still believes it leads: etcd refuses its commit, because the transaction
// compares the leader key's create revision with its term. Without the compare
// the stale leader would overwrite the new leader's model.
TEST(EtcdStateStore, ACommitByADeposedLeaderIsRefusedAndWritesNothing) {
  EtcdClient* client = EtcdEnv::Get().client();
  const std::string prefix = EtcdEnv::Get().NewPrefix();
  EtcdStateStore old_store(client, prefix);
  EtcdLeadership old_lead(client, old_store.layout(), "old:1", absl::Seconds(2));
  auto t1 = old_lead.Campaign();
  ASSERT_TRUE(t1.ok()) << t1.status();
  old_store.SetTerm(*t1);
  ASSERT_TRUE(old_store.Load().ok());
  StateWrite w;
  w.Set(kKindNode, "r0", "from-old");
  w.epoch = 1;
  ASSERT_TRUE(old_store.Commit(w).ok());

  // The old leader's lease goes (as when it is SIGSTOPped past its TTL); its
  // store keeps its term: it has not noticed.
  old_lead.Shutdown();
  EtcdStateStore new_store(client, prefix);
  EtcdLeadership new_lead(client, new_store.layout(), "new:2", absl::Seconds(2));
  auto t2 = new_lead.Campaign();
  ASSERT_TRUE(t2.ok()) << t2.status();
  EXPECT_GT(*t2, *t1);
  new_store.SetTerm(*t2);
  ASSERT_TRUE(new_store.Load().ok());

  // The new leader has written nothing yet: the old store's view of every
  // bucket and of the epoch is still exact, so only the term stops it.
  ASSERT_EQ(old_store.term(), *t1);
  StateWrite stale;
  stale.Set(kKindNode, "r0", "stale");
  stale.Set(kKindNode, "r9", "stale");
  stale.events.push_back({1, "stale-event"});
  stale.epoch = 2;
  auto st = old_store.Commit(stale);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("new:2"));
  EXPECT_EQ(old_store.term(), 0);  // and it knows now

  StateWrite nw;
  nw.Set(kKindNode, "r0", "from-new");
  ASSERT_TRUE(new_store.Commit(nw).ok());
  auto loaded = new_store.Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->objects[kKindNode]["r0"], "from-new");
  EXPECT_FALSE(loaded->objects[kKindNode].count("r9"));
  EXPECT_EQ(loaded->epoch, 1u);
  auto none = new_store.PlanEvents(0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(EtcdStateStore, AStandbyRefusesCommitsButReads) {
  EtcdClient* client = EtcdEnv::Get().client();
  EtcdStateStore standby(client, EtcdEnv::Get().NewPrefix());
  ASSERT_TRUE(standby.Load().ok());
  StateWrite w;
  w.Set(kKindNode, "r0", "x");
  auto st = standby.Commit(w);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("not the leader"));
  auto loaded = standby.Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->objects.empty());
}

// Two writers under one term (the coordinator serializes its own, but a bug
// could not): the bucket revision compare lets only the first through.
TEST(EtcdStateStore, AConcurrentChangeToABucketAbortsTheStaleCommit) {
  EtcdFactory f;
  auto a = f.Open();
  auto* store_a = static_cast<EtcdStateStore*>(a.get());
  EtcdStateStore b(EtcdEnv::Get().client(), store_a->layout().prefix());
  b.SetTerm(store_a->term());
  ASSERT_TRUE(b.Load().ok());
  StateWrite w1;
  w1.Set(kKindNode, "r0", "a");
  ASSERT_TRUE(a->Commit(w1).ok());
  // Under its own term, the only way a coordinator meets such a change is a
  // commit of its own whose answer it lost: it is told, so that it stops acting
  // on a model behind etcd's (main resigns and exits 3).
  std::string diverged;
  b.set_on_diverged([&diverged](const std::string& why) { diverged = why; });
  StateWrite w2;
  w2.Set(kKindNode, "r0", "b");  // same bucket, from a stale cache
  auto st = b.Commit(w2);
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  EXPECT_THAT(diverged, HasSubstr("changed under this leader"));
  auto loaded = a->Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->objects[kKindNode]["r0"], "a");
}

// A commit larger than etcd's --max-request-bytes is refused before anything
// is written, naming the limit.
TEST(EtcdStateStore, AnOversizeCommitIsRefusedNamingTheLimit) {
  EtcdFactory f;
  auto store = f.Open();
  StateWrite big;
  uint64_t x = 88172645463325252ull;  // xorshift: bytes that do not deflate
  for (int i = 0; i < 200; ++i) {
    std::string value(10000, '\0');
    for (char& c : value) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<char>(x);
    }
    big.Set(kKindMove, std::to_string(i), value);
  }
  big.epoch = 1;
  auto st = store->Commit(big);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("--max-request-bytes"));
  auto loaded = store->Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->objects.empty());
  EXPECT_EQ(loaded->epoch, 0u);
}

// DESIGN §9: an add-node plan on an index of S = 4096 at RF 3 x 3 groups commits
// in ONE transaction inside etcd's defaults: every route of the generation and
// a move for a quarter of the replicas of one group.
TEST(EtcdStateStore, AnAddNodePlanAtS4096Rf3ThreeGroupsCommitsAtomically) {
  EtcdFactory f;
  auto store = f.Open();
  StateWrite w;
  for (int shard = 0; shard < 4096; ++shard) {
    v1::ShardRoute r;
    r.set_shard(shard);
    r.set_state(v1::SHARD_STABLE);
    for (int g = 0; g < 3; ++g) {
      auto* o = r.add_owners();
      o->set_group("g" + std::to_string(g));
      for (int k = 0; k < 3; ++k) o->add_nodes("node-" + std::to_string((shard + k) % 9));
      *r.add_write_set() = *o;
      *r.add_acking_set() = *o;
      *r.add_read_set() = *o;
    }
    w.Set(kKindShardRoute, "1/" + std::to_string(shard), r.SerializeAsString());
  }
  for (int i = 0; i < 3072; ++i) {
    v1::Move m;
    m.set_id(static_cast<uint64_t>(i) + 10);
    m.set_generation(1);
    m.set_plan_id(9);
    m.set_state(v1::MOVE_COPYING);
    m.add_sources("node-1");
    m.set_index("products");
    m.set_shard(static_cast<uint32_t>(i));
    m.set_group("g0");
    m.add_old_owners("node-1");
    m.add_new_owners("node-new");
    w.Set(kKindMove, std::to_string(m.id()), m.SerializeAsString());
  }
  w.events.push_back({9, "plan created"});
  w.epoch = 1;
  auto st = store->Commit(w);
  ASSERT_TRUE(st.ok()) << st;
  auto loaded = f.Open()->Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->objects[kKindShardRoute].size(), 4096u);
  EXPECT_EQ(loaded->objects[kKindMove].size(), 3072u);
  EXPECT_EQ(loaded->epoch, 1u);
}

}  // namespace
}  // namespace miroir::coordinator
