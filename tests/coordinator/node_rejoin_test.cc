// A failed node's return (pure, coordinator/node_rejoin.h): sync points from
// repairing AE passes, what a rejoin's prepare copies before its wipe, the purge
// rule while a node is failed, and `nodes forget` (errors change nothing).
#include "coordinator/node_rejoin.h"

#include <gtest/gtest.h>

#include "coordinator/anti_entropy_scheduler.h"
#include "coordinator/routing_tables.h"

namespace miroir::coordinator {
namespace {

// One index "a" (generation 1, 4 shards, RF 1) over groups g0 {n0} and g1 {n1}.
ClusterState TwoGroups() {
  ClusterState s;
  v1::Index ix;
  ix.set_name("a");
  ix.set_shards(4);
  ix.set_rf(1);
  ix.set_live_generation(1);
  auto* g = ix.add_generations();
  g->set_id(1);
  g->set_shards(4);
  g->set_role(v1::GENERATION_LIVE);
  s.indexes["a"] = ix;
  s.generations[1] =
      BuildInitialRoute("a", 1, 4, 1, {GroupNodes{"g0", {"n0"}}, GroupNodes{"g1", {"n1"}}});
  for (const auto& [n, grp] :
       std::vector<std::pair<std::string, std::string>>{{"n0", "g0"}, {"n1", "g1"}}) {
    v1::Node node;
    node.set_id(n);
    node.set_group(grp);
    node.set_status(v1::NODE_ACTIVE);
    node.set_incarnation("inc-" + n);
    s.nodes[n] = node;
  }
  return s;
}

v1::Task Pass(uint32_t shard, bool repair) {
  v1::Task t;
  t.set_kind(v1::TASK_AE_PASS);
  t.set_index("a");
  t.set_generation(1);
  t.set_shards(4);
  t.set_shard(shard);
  t.set_repair(repair);
  return t;
}

v1::TaskResult Starts(std::vector<std::tuple<std::string, std::string, uint64_t>> at) {
  v1::TaskResult r;
  for (const auto& [n, inc, seq] : at) {
    auto* w = r.add_watermarks();
    w->set_node(n);
    w->set_incarnation(inc);
    w->set_seq(seq);
  }
  return r;
}

void Apply(ClusterState* s, const Change& c) {
  for (const auto& [id, n] : c.nodes) s->nodes[id] = n;
}

TEST(NodeRejoin, ARepairingPassRecordsEachReplicasStartAsItsSyncPoint) {
  ClusterState s = TwoGroups();
  Change c;
  RecordSyncPoints(s, Pass(2, true), Starts({{"n0", "inc-n0", 40}, {"n1", "inc-n1", 7}}), &c);
  Apply(&s, c);
  const v1::SyncPoint* p = FindSyncPoint(s.nodes["n0"], 1, 2);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->incarnation(), "inc-n0");
  EXPECT_EQ(p->seq(), 40u);
  ASSERT_NE(FindSyncPoint(s.nodes["n1"], 1, 2), nullptr);
  EXPECT_EQ(FindSyncPoint(s.nodes["n0"], 1, 3), nullptr);

  // A later pass replaces it (one per shard); a report-only pass records nothing.
  Change later;
  RecordSyncPoints(s, Pass(2, true), Starts({{"n0", "inc-n0", 90}}), &later);
  RecordSyncPoints(s, Pass(3, false), Starts({{"n0", "inc-n0", 95}}), &later);
  Apply(&s, later);
  EXPECT_EQ(s.nodes["n0"].sync_points_size(), 1);
  EXPECT_EQ(FindSyncPoint(s.nodes["n0"], 1, 2)->seq(), 90u);
  EXPECT_EQ(FindSyncPoint(s.nodes["n0"], 1, 3), nullptr);
}

TEST(NodeRejoin, TwoPassesInOneChangeKeepBothShards) {
  ClusterState s = TwoGroups();
  Change c;
  RecordSyncPoints(s, Pass(0, true), Starts({{"n0", "inc-n0", 1}}), &c);
  RecordSyncPoints(s, Pass(1, true), Starts({{"n0", "inc-n0", 2}}), &c);
  Apply(&s, c);
  EXPECT_EQ(s.nodes["n0"].sync_points_size(), 2);
}

TEST(NodeRejoin, TheRescueStartsAtTheSyncPointOfTheFailedIncarnationElseAtZero) {
  ClusterState s = TwoGroups();
  Change c;
  RecordSyncPoints(s, Pass(2, true), Starts({{"n0", "inc-n0", 40}}), &c);
  Apply(&s, c);
  // Not failed: no failed incarnation, nothing to copy.
  EXPECT_TRUE(RescueFrom(s.nodes["n0"], 1, 2).node().empty());

  v1::Node failed = AsFailed(s.nodes["n0"]);
  EXPECT_EQ(failed.status(), v1::NODE_FAILED);
  EXPECT_EQ(failed.failed_incarnation(), "inc-n0");
  v1::Watermark w = RescueFrom(failed, 1, 2);
  EXPECT_EQ(w.node(), "n0");
  EXPECT_EQ(w.incarnation(), "inc-n0");
  EXPECT_EQ(w.seq(), 40u);
  // No sync point for shard 3: every entry.
  EXPECT_EQ(RescueFrom(failed, 1, 3).seq(), 0u);
  EXPECT_EQ(RescueFrom(failed, 1, 3).incarnation(), "inc-n0");

  // A sync point of an older incarnation says nothing about this one: from 0.
  v1::Node restarted = s.nodes["n0"];
  restarted.set_incarnation("inc-n0-b");
  EXPECT_EQ(RescueFrom(AsFailed(restarted), 1, 2).seq(), 0u);

  // Unknown incarnation, or forgotten: nothing.
  v1::Node unknown = s.nodes["n0"];
  unknown.clear_incarnation();
  EXPECT_TRUE(RescueFrom(AsFailed(unknown), 1, 2).node().empty());
  v1::Node forgotten = failed;
  forgotten.set_forgotten(true);
  EXPECT_TRUE(RescueFrom(forgotten, 1, 2).node().empty());

  // Rejoined: the failure bookkeeping is gone, the sync points stay.
  v1::Node back = AsRejoined(failed);
  EXPECT_TRUE(back.failed_incarnation().empty());
  EXPECT_FALSE(back.forgotten());
  EXPECT_EQ(back.sync_points_size(), 1);
}

TEST(NodeRejoin, AFailedNodeHoldsBackPurgesUntilForgotten) {
  ClusterState s = TwoGroups();
  AeShard shard{"a", 1, 4, 0};
  bool all = false;
  EXPECT_EQ(PassReplicas(s, shard, &all).size(), 2u);
  EXPECT_TRUE(all);

  s.nodes["n0"] = AsFailed(s.nodes["n0"]);
  EXPECT_TRUE(HoldsBackPurges(s.nodes["n0"]));
  EXPECT_EQ(PassReplicas(s, shard, &all), std::vector<std::string>{"n1"});
  EXPECT_FALSE(all);
  EXPECT_EQ(PurgeBound(1'000'000, AntiEntropyConfig{}, absl::ZeroDuration(), true, all), 0);

  auto forgot = ForgetNode(s, "n0");
  ASSERT_TRUE(forgot.ok()) << forgot.status();
  s.nodes["n0"] = forgot->node();
  EXPECT_FALSE(HoldsBackPurges(s.nodes["n0"]));
  EXPECT_EQ(PassReplicas(s, shard, &all), std::vector<std::string>{"n1"});
  EXPECT_TRUE(all);
}

TEST(NodeRejoin, ForgetReportsTheShardsItHeldAndDropsItsSyncPoints) {
  ClusterState s = TwoGroups();
  Change c;
  RecordSyncPoints(s, Pass(0, true), Starts({{"n0", "inc-n0", 5}}), &c);
  Apply(&s, c);
  s.nodes["n0"] = AsFailed(s.nodes["n0"]);
  auto r = ForgetNode(s, "n0");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->node().forgotten());
  EXPECT_EQ(r->node().status(), v1::NODE_FAILED);
  EXPECT_EQ(r->node().sync_points_size(), 0);
  EXPECT_EQ(r->shards(), 4u);
  EXPECT_EQ(r->shards_with_sync_point(), 1u);
  EXPECT_NE(r->possible_loss().find("unknown"), std::string::npos) << r->possible_loss();
  EXPECT_NE(r->possible_loss().find("1 of 4"), std::string::npos) << r->possible_loss();
}

TEST(NodeRejoin, ForgetRefusesBadInput) {
  ClusterState s = TwoGroups();
  auto unknown = ForgetNode(s, "nx");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("id:"), std::string::npos);
  auto active = ForgetNode(s, "n0");
  EXPECT_EQ(active.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(active.status().message().find("not marked failed"), std::string::npos);

  s.nodes["n0"] = AsFailed(s.nodes["n0"]);
  v1::Plan rejoin;
  rejoin.set_id(9);
  rejoin.set_kind(v1::PLAN_REJOIN);
  rejoin.set_node_id("n0");
  rejoin.set_state(v1::PLAN_RUNNING);
  s.plans[9] = rejoin;
  auto rejoining = ForgetNode(s, "n0");
  EXPECT_EQ(rejoining.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(rejoining.status().message().find("rejoining"), std::string::npos);

  s.plans[9].set_state(v1::PLAN_DONE);
  s.nodes["n0"].set_forgotten(true);
  auto again = ForgetNode(s, "n0");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("already forgotten"), std::string::npos);
}

}  // namespace
}  // namespace miroir::coordinator
