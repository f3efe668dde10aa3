#include "coordinator/planner.h"

#include <gtest/gtest.h>

#include <set>

#include "coordinator/routing_tables.h"

namespace miroir::coordinator {
namespace {

// A state with `groups` (group -> node ids) and one index.
ClusterState MakeState(const std::vector<std::pair<std::string, std::vector<std::string>>>& groups,
                       uint32_t shards, uint32_t rf) {
  ClusterState s;
  s.initialized = true;
  std::vector<GroupNodes> gn;
  for (const auto& [g, nodes] : groups) {
    s.group_order.push_back(g);
    gn.push_back({g, nodes});
    for (const auto& id : nodes) {
      v1::Node n;
      n.set_id(id);
      n.set_group(g);
      n.set_address("127.0.0.1:1");
      n.set_store("redis");
      n.set_status(v1::NODE_ACTIVE);
      s.nodes[id] = n;
    }
  }
  v1::Index ix;
  ix.set_name("p");
  ix.set_shards(shards);
  ix.set_rf(rf);
  ix.set_live_generation(1);
  s.indexes["p"] = ix;
  s.generations[1] = BuildInitialRoute("p", 1, shards, rf, gn);
  s.next_id = 2;
  return s;
}

std::set<std::string> Set(const google::protobuf::RepeatedPtrField<std::string>& f) {
  return {f.begin(), f.end()};
}

TEST(Planner, AddNodeMovesOnlyToTheNewNodeInItsGroup) {
  ClusterState s = MakeState({{"g0", {"a", "b", "c"}}, {"g1", {"x", "y"}}}, 256, 2);
  PlanRequest req;
  req.kind = v1::PLAN_ADD_NODE;
  req.node_id = "d";
  req.group = "g0";
  req.address = "127.0.0.1:9";
  auto d = PlanChange(s, req, {});
  ASSERT_TRUE(d.ok()) << d.status();
  const auto& moves = d->plan.moves();
  // ≈ S·RF/(Ng+1) = 128 replicas move, all to d.
  EXPECT_GT(moves.size(), 90);
  EXPECT_LT(moves.size(), 170);
  for (const auto& m : moves) {
    EXPECT_EQ(m.group(), "g0");
    auto added = Set(m.new_owners());
    for (const auto& o : m.old_owners()) added.erase(o);
    EXPECT_EQ(added, std::set<std::string>{"d"});
    EXPECT_EQ(m.new_owners_size(), 2);
    // In-group sources: live old owners, at least rf−q+1.
    EXPECT_GE(m.sources_size(), static_cast<int>(MinSources(2)));
    for (const auto& src : m.sources()) EXPECT_TRUE(Set(m.old_owners()).count(src));
  }
  // Every shard whose rendezvous owners now include d moves; none other.
  std::set<uint32_t> moved;
  for (const auto& m : moves) moved.insert(m.shard());
  for (uint32_t sh = 0; sh < 256; ++sh) {
    auto owners = Owners(sh, {"a", "b", "c", "d"}, 2);
    bool has_d = std::find(owners.begin(), owners.end(), "d") != owners.end();
    EXPECT_EQ(moved.count(sh) > 0, has_d) << sh;
  }
  ASSERT_EQ(d->nodes.size(), 1u);
  EXPECT_EQ(d->nodes[0].status(), v1::NODE_JOINING);
}

TEST(Planner, RemoveNodeMovesOnlyItsReplicas) {
  ClusterState s = MakeState({{"g0", {"a", "b", "c", "d"}}, {"g1", {"x", "y"}}}, 128, 2);
  PlanRequest req;
  req.kind = v1::PLAN_REMOVE_NODE;
  req.node_id = "b";
  auto d = PlanChange(s, req, {});
  ASSERT_TRUE(d.ok()) << d.status();
  size_t held = 0;
  for (const auto& r : s.generations[1].routes()) {
    auto o = StoredOwners(r, "g0");
    held += std::count(o.begin(), o.end(), "b");
  }
  EXPECT_EQ(static_cast<size_t>(d->plan.moves_size()), held);
  for (const auto& m : d->plan.moves()) {
    EXPECT_EQ(m.group(), "g0");
    EXPECT_TRUE(Set(m.old_owners()).count("b"));
    EXPECT_FALSE(Set(m.new_owners()).count("b"));
    auto kept = Set(m.old_owners());
    kept.erase("b");
    for (const auto& k : kept) EXPECT_TRUE(Set(m.new_owners()).count(k));
  }
}

TEST(Planner, RemoveRefusedWhenAGroupWouldBeSmallerThanRf) {
  ClusterState s = MakeState({{"g0", {"a", "b"}}, {"g1", {"x", "y"}}}, 16, 2);
  PlanRequest req;
  req.kind = v1::PLAN_REMOVE_NODE;
  req.node_id = "a";
  auto d = PlanChange(s, req, {});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Planner, AddGroupCopiesFromAnotherGroup) {
  ClusterState s = MakeState({{"g0", {"a", "b"}}, {"g1", {"x", "y"}}}, 32, 1);
  PlanRequest req;
  req.kind = v1::PLAN_ADD_GROUP;
  req.group = "g2";
  for (const char* id : {"m", "n"}) {
    v1::Node n;
    n.set_id(id);
    n.set_address("127.0.0.1:5");
    req.nodes.push_back(n);
  }
  auto d = PlanChange(s, req, {});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->plan.moves_size(), 32);
  for (const auto& m : d->plan.moves()) {
    EXPECT_EQ(m.group(), "g2");
    EXPECT_TRUE(m.old_owners().empty());
    ASSERT_FALSE(m.sources().empty());
    for (const auto& src : m.sources()) {
      EXPECT_TRUE(s.nodes.count(src));
      EXPECT_NE(s.nodes[src].group(), "g2");
    }
  }
  EXPECT_EQ(d->group_order, (std::vector<std::string>{"g0", "g1", "g2"}));
}

TEST(Planner, RestoreReplacesTheFailedNodeAndReadsAValidSource) {
  ClusterState s = MakeState({{"g0", {"a", "b", "c"}}, {"g1", {"x"}}}, 64, 1);
  s.nodes["b"].set_status(v1::NODE_FAILED);
  PlanRequest req;
  req.kind = v1::PLAN_RESTORE;
  req.node_id = "b";
  auto d = PlanChange(s, req, {});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_GT(d->plan.moves_size(), 0);
  for (const auto& m : d->plan.moves()) {
    EXPECT_EQ(m.group(), "g0");
    EXPECT_EQ(Set(m.old_owners()), std::set<std::string>{"b"});
    EXPECT_FALSE(Set(m.new_owners()).count("b"));
    // RF=1: the only old owner is failed, so the source is another group's owner.
    ASSERT_EQ(m.sources_size(), 1);
    EXPECT_EQ(m.sources(0), "x");
  }
}

TEST(Planner, RemoveGroupReadsFromEveryGroup) {
  ClusterState s = MakeState({{"g0", {"a"}}, {"g1", {"x"}}, {"g2", {"m"}}}, 8, 1);
  PlanRequest req;
  req.kind = v1::PLAN_REMOVE_GROUP;
  req.group = "g1";
  auto d = PlanChange(s, req, {});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->plan.moves_size(), 8);
  for (const auto& m : d->plan.moves()) {
    EXPECT_EQ(m.group(), "g1");
    EXPECT_TRUE(m.new_owners().empty());
    EXPECT_EQ(Set(m.sources()), (std::set<std::string>{"a", "x", "m"}));
  }
}

TEST(Planner, EstimatesComeFromNodeStats) {
  ClusterState s = MakeState({{"g0", {"a"}}, {"g1", {"x"}}}, 4, 1);
  std::map<std::string, NodeHealth> health;
  for (uint32_t sh = 0; sh < 4; ++sh) health["a"].shards[{"p", 1, sh}] = {100, 4000};
  PlanRequest req;
  req.kind = v1::PLAN_ADD_NODE;
  req.node_id = "b";
  req.group = "g0";
  req.address = "127.0.0.1:9";
  req.throttle_docs_per_s = 50;
  auto d = PlanChange(s, req, health);
  ASSERT_TRUE(d.ok());
  ASSERT_GT(d->plan.moves_size(), 0);
  for (const auto& m : d->plan.moves()) {
    EXPECT_EQ(m.est_documents(), 100u);
    EXPECT_EQ(m.est_bytes(), 4000u);
  }
  EXPECT_DOUBLE_EQ(d->plan.est_duration_s(), d->plan.moves_size() * 100 / 50.0);
}

}  // namespace
}  // namespace miroir::coordinator
