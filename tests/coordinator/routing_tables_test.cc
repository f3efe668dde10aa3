// Routing tables: a stable shard without a failed owner stores its write, acking
// and read sets once (as its owners); any move or failed owner makes them
// explicit. The read set leaves out failed nodes and nodes still joining.
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

TEST(RoutingTables, TheReadSetLeavesOutFailedNodesAndNodesStillJoining) {
  v1::GenerationRoute g = BuildInitialRoute("products", 1, 4, 3, TwoGroups());
  v1::ShardRoute r = g.routes(0);
  EXPECT_EQ(Nodes(ReadSet(r), "g0"), Nodes(r.owners(), "g0"));
  const std::vector<std::string> order = {"g0", "g1"};
  const std::vector<std::string> owners = Nodes(r.owners(), "g0");

  // A failed owner: not read from.
  RecomputeShardRoute(&r, {}, {owners[1]}, order, 0);
  EXPECT_EQ(Nodes(ReadSet(r), "g0"), (std::vector<std::string>{owners[0], owners[2]}));
  EXPECT_EQ(Nodes(ReadSet(r), "g1"), Nodes(r.owners(), "g1"));

  // It rejoins (J = {it}, an owner all along): not read from until the move is
  // active, whatever state it copies in, and not when the move fails before that.
  v1::Move m;
  m.set_group("g0");
  m.add_old_owners(owners[0]);
  m.add_old_owners(owners[2]);
  for (const auto& n : owners) m.add_new_owners(n);
  for (v1::MoveState st :
       {v1::MOVE_PENDING, v1::MOVE_PREPARE, v1::MOVE_DUAL_WRITE, v1::MOVE_COPYING,
        v1::MOVE_CATCHING_UP, v1::MOVE_PAUSED, v1::MOVE_FINAL_DELTA, v1::MOVE_ABORTING}) {
    m.set_state(st);
    RecomputeShardRoute(&r, {&m}, {}, order, 0);
    EXPECT_EQ(Nodes(ReadSet(r), "g0"), (std::vector<std::string>{owners[0], owners[2]}))
        << v1::MoveState_Name(st);
  }
  m.set_state(v1::MOVE_FAILED);
  m.set_aborted_from(v1::MOVE_COPYING);
  RecomputeShardRoute(&r, {&m}, {}, order, 0);
  EXPECT_EQ(Nodes(ReadSet(r), "g0").size(), 2u);
  // Active (and after): the copy is complete, it is read again.
  for (v1::MoveState st : {v1::MOVE_ACTIVE, v1::MOVE_RECONCILING, v1::MOVE_CLEANUP}) {
    m.set_state(st);
    RecomputeShardRoute(&r, {&m}, {}, order, 0);
    EXPECT_EQ(Nodes(ReadSet(r), "g0"), owners) << v1::MoveState_Name(st);
  }
  m.set_state(v1::MOVE_FAILED);
  m.set_aborted_from(v1::MOVE_CLEANUP);
  RecomputeShardRoute(&r, {&m}, {}, order, 0);
  EXPECT_EQ(Nodes(ReadSet(r), "g0"), owners);
  RecomputeShardRoute(&r, {}, {}, order, 0);
  EXPECT_TRUE(r.sets_are_owners());
  EXPECT_EQ(r.read_set_size(), 0);
}

}  // namespace
}  // namespace miroir::coordinator
