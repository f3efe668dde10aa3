#include "coordinator/sqlite_state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/coordinator/test_util.h"

namespace miroir::coordinator {
namespace {

TEST(SqliteStateStore, RoundTripAndReopen) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/c.db";
  {
    auto store = SqliteStateStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ(*(*store)->SchemaVersion(), SqliteStateStore::kSchemaVersion);
    StateWrite w;
    w.Set(kKindNode, "r0", "node-bytes");
    w.Set(kKindMeta, "initialized", "1");
    w.events.push_back({7, "ev1"});
    w.events.push_back({8, "ev2"});
    w.epoch = 3;
    ASSERT_TRUE((*store)->Commit(w).ok());
    StateWrite w2;
    w2.Set(kKindNode, "r1", std::string("bin\0ary", 7));
    w2.Delete(kKindMeta, "initialized");
    w2.events.push_back({7, "ev3"});
    ASSERT_TRUE((*store)->Commit(w2).ok());
  }
  auto store = SqliteStateStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->epoch, 3u);
  EXPECT_EQ(loaded->objects[kKindNode]["r0"], "node-bytes");
  EXPECT_EQ(loaded->objects[kKindNode]["r1"], std::string("bin\0ary", 7));
  EXPECT_FALSE(loaded->objects[kKindMeta].count("initialized"));
  EXPECT_EQ(loaded->event_count, 3u);
  auto ev = (*store)->PlanEvents(7);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(*ev, (std::vector<std::string>{"ev1", "ev3"}));
}

TEST(SqliteStateStore, AFailedCommitAppliesNothing) {
  testing::TempDir dir;
  auto store = SqliteStateStore::Open(dir.path() + "/c.db");
  ASSERT_TRUE(store.ok());
  StateWrite w;
  w.epoch = 10;
  ASSERT_TRUE((*store)->Commit(w).ok());
  StateWrite bad;
  bad.Set(kKindNode, "r0", "x");
  bad.events.push_back({1, "e"});
  bad.epoch = 9;  // backwards: the whole write is refused
  auto st = (*store)->Commit(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->epoch, 10u);
  EXPECT_TRUE(loaded->objects[kKindNode].empty());
  EXPECT_EQ(loaded->event_count, 0u);
}

// A routing change publishes a new table under a new epoch number: a commit whose
// epoch equals the stored one is a second table under one number (two
// coordinators on one file, each at epoch+1 of its own view). Before the fix the
// equal epoch was accepted and its objects written.
TEST(SqliteStateStore, RefusesAnEpochThatIsNotStrictlyNewer) {
  testing::TempDir dir;
  auto store = SqliteStateStore::Open(dir.path() + "/c.db");
  ASSERT_TRUE(store.ok());
  StateWrite first;
  first.Set(kKindNode, "r0", "table-a");
  first.epoch = 5;
  ASSERT_TRUE((*store)->Commit(first).ok());
  StateWrite same;
  same.Set(kKindNode, "r0", "table-b");
  same.events.push_back({1, "e"});
  same.epoch = 5;
  auto st = (*store)->Commit(same);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("epoch"));
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->epoch, 5u);
  EXPECT_EQ(loaded->objects[kKindNode]["r0"], "table-a");
  EXPECT_EQ(loaded->event_count, 0u);
  // A commit without an epoch (no routing change) is not affected.
  StateWrite plain;
  plain.Set(kKindNode, "r1", "x");
  EXPECT_TRUE((*store)->Commit(plain).ok());
  StateWrite next;
  next.epoch = 6;
  EXPECT_TRUE((*store)->Commit(next).ok());
}

TEST(SqliteStateStore, ClusterStateSurvivesReload) {
  testing::TempDir dir;
  auto store = SqliteStateStore::Open(dir.path() + "/c.db");
  ASSERT_TRUE(store.ok());
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
  ASSERT_TRUE((*store)->Commit(c.ToWrite(1)).ok());
  ApplyChange(c, 1, &s);
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok());
  auto back = ClusterState::FromLoaded(*loaded);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->epoch, 1u);
  EXPECT_TRUE(back->initialized);
  EXPECT_EQ(back->group_order, std::vector<std::string>{"g0"});
  EXPECT_EQ(back->next_id, s.next_id);
  ASSERT_EQ(back->generations.size(), 1u);
  EXPECT_EQ(back->generations.begin()->second.routes_size(), 2);
  EXPECT_EQ(back->generations.begin()->second.routes(1).state(), v1::SHARD_DUAL_WRITE);
  EXPECT_EQ(BuildView(*back)->SerializeAsString(), BuildView(s)->SerializeAsString());
}

// A state written before routes carried a read set gets one on load: the
// owners minus the failed nodes (the rest of the route as stored).
TEST(SqliteStateStore, ARouteStoredWithoutAReadSetGetsOneOnLoad) {
  testing::TempDir dir;
  auto store = SqliteStateStore::Open(dir.path() + "/c.db");
  ASSERT_TRUE(store.ok());
  ClusterState s;
  Change c;
  for (const char* id : {"r0", "r1"}) {
    v1::Node n;
    n.set_id(id);
    n.set_group("g0");
    n.set_status(std::string(id) == "r1" ? v1::NODE_FAILED : v1::NODE_ACTIVE);
    c.nodes[id] = n;
  }
  c.group_order = std::vector<std::string>{"g0"};
  c.initialized = true;
  v1::GenerationRoute g;
  g.set_index("p");
  g.set_generation(c.AllocId(s));
  g.set_shards(1);
  g.set_rf(2);
  g.set_role(v1::GENERATION_LIVE);
  c.generations[g.generation()] = g;
  v1::ShardRoute r;
  r.set_shard(0);
  r.set_state(v1::SHARD_STABLE);
  auto* o = r.add_owners();
  o->set_group("g0");
  o->add_nodes("r0");
  o->add_nodes("r1");
  auto* w = r.add_write_set();
  w->set_group("g0");
  w->add_nodes("r0");
  *r.add_acking_set() = *w;
  c.routes[{g.generation(), 0}] = r;
  c.bump_epoch = true;
  ASSERT_TRUE((*store)->Commit(c.ToWrite(1)).ok());
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok());
  auto back = ClusterState::FromLoaded(*loaded);
  ASSERT_TRUE(back.ok()) << back.status();
  const v1::ShardRoute& got = back->generations.begin()->second.routes(0);
  ASSERT_EQ(got.read_set_size(), 1);
  EXPECT_EQ(got.read_set(0).group(), "g0");
  ASSERT_EQ(got.read_set(0).nodes_size(), 1);
  EXPECT_EQ(got.read_set(0).nodes(0), "r0");
  EXPECT_EQ(got.write_set_size(), 1);
  EXPECT_FALSE(got.sets_are_owners());
}

}  // namespace
}  // namespace miroir::coordinator
