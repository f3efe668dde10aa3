// Which tasks step aside for a cutover, and on which nodes a view holds one.
#include "worker/tasks/cutover_yield.h"

#include <gtest/gtest.h>

#include "tests/worker/view_builder.h"
#include "worker/router.h"

namespace miroir {
namespace {

v1::Task Kind(v1::TaskKind kind) {
  v1::Task t;
  t.set_kind(kind);
  return t;
}

TEST(CutoverYield, BulkKindsYieldAndTheCutoversOwnTasksDoNot) {
  for (auto k :
       {v1::TASK_BACKFILL, v1::TASK_CATCH_UP, v1::TASK_RECONCILE, v1::TASK_VERIFY, v1::TASK_AE_PASS,
        v1::TASK_RESHARD_BACKFILL, v1::TASK_RESHARD_VERIFY, v1::TASK_RESHARD_DELTA}) {
    EXPECT_TRUE(YieldsToCutovers(Kind(k))) << v1::TaskKind_Name(k);
  }
  for (auto k : {v1::TASK_FENCE, v1::TASK_FINAL_DELTA, v1::TASK_PREPARE, v1::TASK_CLEANUP}) {
    EXPECT_FALSE(YieldsToCutovers(Kind(k))) << v1::TaskKind_Name(k);
  }
  // A reshard delta with F is the swap's final delta: the cutover itself.
  v1::Task swap_delta = Kind(v1::TASK_RESHARD_DELTA);
  swap_delta.add_upto()->set_node("a");
  EXPECT_FALSE(YieldsToCutovers(swap_delta));
  // So is the node-batched final delta (F per shard in its batch, none in upto);
  // a node-batched catch-up pass (no F) is bulk work and yields.
  v1::Task batched = Kind(v1::TASK_RESHARD_DELTA);
  batched.add_node_shards()->mutable_from()->set_node("a");
  EXPECT_TRUE(YieldsToCutovers(batched));
  batched.mutable_node_shards(0)->mutable_upto()->set_node("a");
  EXPECT_FALSE(YieldsToCutovers(batched));
}

TEST(CutoverYield, ASnapshotNamesEveryNodeOfItsPausedShards) {
  const std::map<std::string, std::string> addr{
      {"a", "h:1"}, {"b", "h:2"}, {"c", "h:3"}, {"x", "h:4"}, {"y", "h:5"}};
  v1::ClusterView v = testing::MakeView(7, addr, "products", 4, 1, {{"g0", {"a"}}, {"g1", {"x"}}});
  EXPECT_TRUE(RoutingSnapshot(v).CutoverNodes().empty());
  // Shard 2 moves a -> b in g0 and is paused: owners, write set, the other group.
  v1::ShardRoute* r = v.mutable_generations(0)->mutable_routes(2);
  r->set_state(v1::SHARD_PAUSED);
  testing::FillGroups({{"g0", {"a", "b"}}, {"g1", {"x"}}}, r->mutable_write_set());
  // Shard 3 is dual-writing to c: not a cutover.
  v1::ShardRoute* d = v.mutable_generations(0)->mutable_routes(3);
  d->set_state(v1::SHARD_DUAL_WRITE);
  testing::FillGroups({{"g0", {"a", "c"}}, {"g1", {"x"}}}, d->mutable_write_set());
  RoutingSnapshot snap(v);
  EXPECT_EQ(snap.CutoverNodes(), (absl::flat_hash_set<std::string>{"a", "b", "x"}));

  v1::Task t = Kind(v1::TASK_BACKFILL);
  t.add_sources("y");
  t.add_targets("c");
  EXPECT_FALSE(TouchesCutover(t, snap.CutoverNodes()));
  t.add_targets("b");
  EXPECT_TRUE(TouchesCutover(t, snap.CutoverNodes()));
  // A reshard task names its nodes through its routes.
  v1::Task rb = Kind(v1::TASK_RESHARD_BACKFILL);
  *rb.mutable_target_route() =
      testing::MakeView(7, addr, "products", 2, 1, {{"g0", {"y"}}}).generations(0);
  EXPECT_FALSE(TouchesCutover(rb, snap.CutoverNodes()));
  *rb.mutable_source_route() = v.generations(0);
  EXPECT_TRUE(TouchesCutover(rb, snap.CutoverNodes()));
}

}  // namespace
}  // namespace miroir
