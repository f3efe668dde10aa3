// JudgeCluster (coordinator/cluster_check.h): the findings of `miroir-ctl check`.
#include "coordinator/cluster_check.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace miroir::coordinator {
namespace {

constexpr int64_t kNow = 1'000'000;

v1::Node MakeNode(const std::string& id, v1::NodeStatus status = v1::NODE_ACTIVE) {
  v1::Node n;
  n.set_id(id);
  n.set_group("g0");
  n.set_address("127.0.0.1:63" + std::to_string(id.size()));
  n.set_store("redis");
  n.set_status(status);
  return n;
}

NodeHealth Durable() {
  NodeHealth h;
  h.reachable = true;
  h.reported_ms = kNow - 1000;
  h.store_config = RequiredDurabilityConfig();
  return h;
}

// Two healthy nodes, one worker on the current epoch.
ClusterCheckInput Healthy() {
  ClusterCheckInput in;
  in.now_ms = kNow;
  in.epoch = 7;
  in.nodes = {MakeNode("r0"), MakeNode("r1")};
  in.health["r0"] = Durable();
  in.health["r1"] = Durable();
  WorkerSnapshot w;
  w.id = "w1";
  w.acked_epoch = 7;
  in.workers = {w};
  return in;
}

// "check/subject" of every error finding.
std::vector<std::string> Errors(const v1::CheckClusterResponse& r) {
  std::vector<std::string> out;
  for (const auto& f : r.findings()) {
    if (f.severity() == "error") out.push_back(f.check() + "/" + f.subject());
  }
  return out;
}

TEST(ClusterCheck, AHealthyFleetHasNoFindings) {
  auto r = JudgeCluster(Healthy());
  EXPECT_TRUE(r.healthy());
  EXPECT_EQ(r.findings_size(), 0);
  ASSERT_EQ(r.nodes_size(), 2);
  EXPECT_EQ(r.nodes(0).reachable(), "yes");
  EXPECT_EQ(r.nodes(0).store_config().at("appendfsync"), "always");
  EXPECT_EQ(r.nodes(0).report_age_ms(), 1000);
}

TEST(ClusterCheck, EachNonDurableSettingIsAnErrorNamingIt) {
  auto in = Healthy();
  in.health["r1"].store_config["appendfsync"] = "everysec";
  in.health["r1"].store_config["maxmemory-policy"] = "allkeys-lru";
  in.health["r0"].store_config.erase("appendonly");
  auto r = JudgeCluster(in);
  EXPECT_FALSE(r.healthy());
  EXPECT_EQ(Errors(r),
            (std::vector<std::string>{"store_config/r0", "store_config/r1", "store_config/r1"}));
  bool named = false;
  for (const auto& f : r.findings()) {
    named = named ||
            f.message().find("appendfsync is 'everysec', must be 'always'") != std::string::npos;
  }
  EXPECT_TRUE(named);
}

TEST(ClusterCheck, UnreachableStaleAndUnreportedNodesAreErrors) {
  auto in = Healthy();
  in.nodes.push_back(MakeNode("r22"));
  in.health["r0"].reachable = false;
  in.health["r1"].reported_ms = kNow - in.report_stale_ms - 1;
  auto r = JudgeCluster(in);
  EXPECT_EQ(Errors(r),
            (std::vector<std::string>{"node_reachable/r0", "node_report/r1", "node_report/r22"}));
  EXPECT_EQ(r.nodes(2).reachable(), "unknown");
  EXPECT_EQ(r.nodes(2).report_age_ms(), -1);
}

TEST(ClusterCheck, AFailedNodeIsOneFindingAndItsStoreIsNotJudged) {
  auto in = Healthy();
  in.nodes[1].set_status(v1::NODE_FAILED);
  in.health["r1"].reachable = false;
  auto r = JudgeCluster(in);
  EXPECT_EQ(Errors(r), (std::vector<std::string>{"node_failed/r1"}));
}

TEST(ClusterCheck, RemovedNodesAreIgnored) {
  auto in = Healthy();
  in.nodes.push_back(MakeNode("gone", v1::NODE_REMOVED));
  auto r = JudgeCluster(in);
  EXPECT_TRUE(r.healthy());
  EXPECT_EQ(r.nodes_size(), 2);
}

TEST(ClusterCheck, WorkersBehindTheEpochOrNoneAtAllAreErrors) {
  auto in = Healthy();
  in.workers[0].acked_epoch = 6;
  EXPECT_EQ(Errors(JudgeCluster(in)), (std::vector<std::string>{"worker_epoch/w1"}));
  in.workers.clear();
  EXPECT_EQ(Errors(JudgeCluster(in)), (std::vector<std::string>{"workers/-"}));
}

TEST(ClusterCheck, AFailedPlanIsAnErrorUntilTheSameChangeIsDone) {
  auto in = Healthy();
  v1::Plan failed;
  failed.set_id(3);
  failed.set_kind(v1::PLAN_ADD_NODE);
  failed.set_node_id("r9");
  failed.set_group("g0");
  failed.set_state(v1::PLAN_FAILED);
  in.plans = {failed};
  EXPECT_EQ(Errors(JudgeCluster(in)), (std::vector<std::string>{"plan_failed/3"}));
  v1::Plan other = failed;  // done, but another node: does not supersede it
  other.set_id(5);
  other.set_node_id("r8");
  other.set_state(v1::PLAN_DONE);
  in.plans.push_back(other);
  EXPECT_EQ(Errors(JudgeCluster(in)), (std::vector<std::string>{"plan_failed/3"}));
  v1::Plan retried = failed;
  retried.set_id(6);
  retried.set_state(v1::PLAN_DONE);
  in.plans.push_back(retried);
  EXPECT_TRUE(JudgeCluster(in).healthy());
}

TEST(ClusterCheck, LeftoversOfEndedPlansAndReshardsAreErrors) {
  auto in = Healthy();
  v1::Plan aborted;
  aborted.set_id(4);
  aborted.set_state(v1::PLAN_ABORTED);
  v1::Move m;
  m.set_id(40);
  m.set_state(v1::MOVE_COPYING);
  *aborted.add_moves() = m;
  in.plans = {aborted};
  in.nodes[1].set_status(v1::NODE_JOINING);  // no unfinished plan moves it
  v1::GenerationRoute shadow;
  shadow.set_index("products");
  shadow.set_generation(12);
  shadow.set_role(v1::GENERATION_SHADOW);
  in.generations = {shadow};
  v1::ReshardRecord r;
  r.set_id(11);
  r.set_index("products");
  r.set_state(v1::RESHARD_FAILED);
  in.reshards = {r};
  EXPECT_EQ(Errors(JudgeCluster(in)),
            (std::vector<std::string>{"node_status/r1", "leftover_move/4",
                                      "reshard_failed/products", "leftover_generation/products"}));
  // While a reshard of the index runs, its shadow is expected.
  v1::ReshardRecord running = r;
  running.set_id(13);
  running.set_state(v1::RESHARD_BACKFILL);
  in.reshards.push_back(running);
  in.plans.clear();
  in.nodes[1].set_status(v1::NODE_ACTIVE);
  EXPECT_EQ(Errors(JudgeCluster(in)), (std::vector<std::string>{"reshard_failed/products"}));
}

TEST(ClusterCheck, PendingRecoveryPassesAreErrorsAPausedPlanAWarning) {
  auto in = Healthy();
  in.pending_passes["r0"] = 3;
  v1::Plan paused;
  paused.set_id(2);
  paused.set_state(v1::PLAN_PAUSED);
  in.plans = {paused};
  auto r = JudgeCluster(in);
  EXPECT_EQ(Errors(r), (std::vector<std::string>{"recovery_passes/r0"}));
  ASSERT_EQ(r.findings_size(), 2);
  EXPECT_EQ(r.findings(1).severity(), "warning");  // errors first
  EXPECT_EQ(r.findings(1).check(), "plan_paused");
}

TEST(ClusterCheck, UnreadSettingsAreAWarningOnly) {
  auto in = Healthy();
  in.health["r0"].store_config.clear();
  auto r = JudgeCluster(in);
  EXPECT_TRUE(r.healthy());
  ASSERT_EQ(r.findings_size(), 1);
  EXPECT_EQ(r.findings(0).check(), "store_config");
  EXPECT_EQ(r.findings(0).severity(), "warning");
}

}  // namespace
}  // namespace miroir::coordinator
