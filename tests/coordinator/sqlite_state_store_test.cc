#include "coordinator/sqlite_state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/coordinator/test_util.h"

namespace miroir::coordinator {
namespace {

// The StateStore contract (round trip and reopen, a failed commit applies
// nothing, an epoch not strictly newer is refused, the cluster state survives a
// reload) runs on this backend and on etcd: StateStoreContract in
// tests/integration/etcd_state_store_test.cc. What is SQLite's own is here.

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
