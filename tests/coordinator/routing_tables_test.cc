// Routing tables: a stable shard without a failed owner stores its write and
// acking sets once (as its owners); any move or failed owner makes them explicit.
#include "coordinator/routing_tables.h"

#include <gtest/gtest.h>

#include "common/route_sets.h"

namespace miroir::coordinator {
namespace {

std::vector<std::string> Nodes(const GroupSets& sets, const std::string& group) {
  for (const auto& g : sets) {
    if (g.group() == group) return {g.nodes().begin(), g.nodes().end()};
  }
  return {};
}

std::vector<GroupNodes> TwoGroups() {
  return {GroupNodes{"g0", {"a", "b", "c"}}, GroupNodes{"g1", {"x", "y"}}};
}

TEST(RoutingTables, AStableTableStoresItsSetsOnce) {
  v1::GenerationRoute g = BuildInitialRoute("products", 1, 16, 1, TwoGroups());
  ASSERT_EQ(g.routes_size(), 16);
  for (const auto& r : g.routes()) {
    EXPECT_TRUE(r.sets_are_owners());
    EXPECT_EQ(r.write_set_size(), 0);
    EXPECT_EQ(r.acking_set_size(), 0);
    EXPECT_EQ(Nodes(WriteSet(r), "g0"), Nodes(r.owners(), "g0"));
    EXPECT_EQ(Nodes(AckingSet(r), "g1"), Nodes(r.owners(), "g1"));
    EXPECT_EQ(Nodes(r.owners(), "g0").size(), 1u);
  }
}

TEST(RoutingTables, AMoveOrAFailedOwnerMakesTheSetsExplicitAndBackAgain) {
  v1::GenerationRoute g = BuildInitialRoute("products", 1, 4, 1, TwoGroups());
  v1::ShardRoute r = g.routes(0);
  const std::string owner = Nodes(r.owners(), "g0")[0];
  const std::string joining = owner == "a" ? "b" : "a";
  v1::Move m;
  m.set_group("g0");
  m.add_old_owners(owner);
  m.add_new_owners(joining);
  m.set_state(v1::MOVE_COPYING);
  const std::vector<std::string> order = {"g0", "g1"};
  RecomputeShardRoute(&r, {&m}, {}, order, 0);
  EXPECT_FALSE(r.sets_are_owners());
  EXPECT_EQ(Nodes(WriteSet(r), "g0"), (std::vector<std::string>{owner, joining}));
  EXPECT_EQ(Nodes(AckingSet(r), "g0"), (std::vector<std::string>{owner}));

  // The move ended (owners switched): stable again, stored once.
  SetStoredOwners(&r, "g0", {joining}, order);
  RecomputeShardRoute(&r, {}, {}, order, 0);
  EXPECT_TRUE(r.sets_are_owners());
  EXPECT_EQ(r.write_set_size(), 0);
  EXPECT_EQ(Nodes(WriteSet(r), "g0"), (std::vector<std::string>{joining}));

  // A failed owner stays an owner but leaves the write and acking sets.
  RecomputeShardRoute(&r, {}, {joining}, order, 0);
  EXPECT_FALSE(r.sets_are_owners());
  EXPECT_EQ(Nodes(r.owners(), "g0"), (std::vector<std::string>{joining}));
  EXPECT_TRUE(Nodes(WriteSet(r), "g0").empty());
  EXPECT_TRUE(Nodes(AckingSet(r), "g0").empty());
  EXPECT_EQ(Nodes(WriteSet(r), "g1"), Nodes(r.owners(), "g1"));
}

}  // namespace
}  // namespace miroir::coordinator
