#include "worker/view_change.h"

#include <gtest/gtest.h>

#include "tests/worker/view_builder.h"
#include "worker/inflight_tracker.h"

namespace miroir {
namespace {

v1::ClusterView View(uint64_t epoch) {
  return testing::MakeView(epoch, {{"r0", "127.0.0.1:1"}, {"r1", "127.0.0.1:2"}}, "products", 4, 1,
                           {{"g0", {"r0"}}});
}

TEST(ViewChange, OnlyTheShardsWhoseRouteChangedAreNamed) {
  v1::ClusterView a = View(1), b = View(2);
  EXPECT_FALSE(DiffViews(a, b).everything);
  EXPECT_TRUE(DiffViews(a, b).shards.empty());  // the epoch alone changes nothing
  // A move of shard 2 to dual-write, and shard 3 paused.
  b.mutable_generations(0)->mutable_routes(2)->mutable_write_set(0)->add_nodes("r1");
  b.mutable_generations(0)->mutable_routes(3)->set_state(v1::SHARD_PAUSED);
  ViewChange c = DiffViews(a, b);
  EXPECT_FALSE(c.everything);
  EXPECT_EQ(c.shards.size(), 2u);
  EXPECT_TRUE(c.shards.contains(ShardKeyName("products", 1, 2)));
  EXPECT_TRUE(c.shards.contains(ShardKeyName("products", 1, 3)));
}

TEST(ViewChange, MoreThanRoutesChangedIsEverything) {
  const v1::ClusterView a = View(1);
  EXPECT_TRUE(DiffViews(v1::ClusterView(), a).everything);  // first view
  v1::ClusterView b = View(2);
  b.mutable_nodes(1)->set_address("127.0.0.1:3");
  EXPECT_TRUE(DiffViews(a, b).everything);
  b = View(2);
  (*b.mutable_aliases())["shop"] = "products";
  EXPECT_TRUE(DiffViews(a, b).everything);
  b = View(2);
  b.mutable_generations(0)->set_role(v1::GENERATION_SHADOW);
  EXPECT_TRUE(DiffViews(a, b).everything);
  b = View(2);
  *b.add_generations() = View(2).generations(0);  // a shadow generation appears
  b.mutable_generations(1)->set_generation(2);
  EXPECT_TRUE(DiffViews(a, b).everything);
}

TEST(InflightTracker, DrainIsPerShardAndPerEpoch) {
  InflightTracker t;
  const absl::flat_hash_set<std::string> s1{ShardKeyName("products", 1, 1)};
  const uint64_t a = t.Begin(5, 3, {ShardKeyName("products", 1, 0)});
  const uint64_t b =
      t.Begin(6, 2, {ShardKeyName("products", 1, 1), ShardKeyName("products", 1, 2)});
  EXPECT_EQ(t.Total(), 5u);
  EXPECT_FALSE(t.NoneBelow(6));  // a, at 5
  EXPECT_TRUE(t.NoneBelow(5));
  EXPECT_TRUE(t.NoneBelowTouching(6, s1));   // b is at 6, not below
  EXPECT_FALSE(t.NoneBelowTouching(7, s1));  // b touches shard 1 at 6 < 7
  t.End(b);
  EXPECT_TRUE(t.NoneBelowTouching(7, s1));
  EXPECT_FALSE(t.NoneBelow(7));
  t.End(a);
  t.End(a);  // twice: ignored
  EXPECT_TRUE(t.NoneBelow(100));
  EXPECT_EQ(t.Total(), 0u);
}

}  // namespace
}  // namespace miroir
