// deploy/prometheus/alerts.yaml names only metrics the coordinator exports: the
// rules file is loaded with yaml-cpp and every `miroir_*` name of every expr is
// looked up in a real render of the coordinator's registry (an initialised
// in-process coordinator with a node report and a running plan, so the labelled
// families exist too) plus the build info every program exports.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <vector>

#include "common/build_info.h"
#include "coordinator/coordinator_metrics.h"
#include "tests/coordinator/test_util.h"

namespace miroir::testing {
namespace {

// No std::regex here: GCC 12's <regex> trips -Wmaybe-uninitialized (-Werror) in
// the sanitizer tree.
std::set<std::string> RenderedFamilies(const std::string& text) {
  std::set<std::string> out;
  const std::string prefix = "# TYPE ";
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (line.rfind(prefix, 0) == 0) {
      const size_t sp = line.find(' ', prefix.size());
      if (sp != std::string::npos) out.insert(line.substr(prefix.size(), sp - prefix.size()));
    }
    start = end + 1;
  }
  return out;
}

// Every "miroir_[a-z0-9_]+" in `expr`.
std::vector<std::string> MetricNames(const std::string& expr) {
  std::vector<std::string> out;
  const std::string prefix = "miroir_";
  auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; };
  for (size_t at = expr.find(prefix); at != std::string::npos; at = expr.find(prefix, at)) {
    size_t end = at + prefix.size();
    while (end < expr.size() && word(expr[end])) ++end;
    out.push_back(expr.substr(at, end - at));
    at = end;
  }
  return out;
}

TEST(AlertRules, EveryMetricARuleUsesIsExported) {
  TempDir dir;
  RunningCoordinator coord(dir.path(), FastConfig());
  {
    grpc::ClientContext ctx;
    v1::InitClusterRequest req;
    req.set_fleet_yaml(kFleet);
    v1::InitClusterResponse resp;
    ASSERT_TRUE(coord.stub().InitCluster(&ctx, req, &resp).ok());
  }
  v1::NodeReport report;
  report.set_node("r0");
  report.set_reachable(true);
  report.set_incarnation("inc-r0");
  (*report.mutable_store_config())["appendfsync"] = "always";
  coord.core().NodeReport(report);
  {
    grpc::ClientContext ctx;
    v1::CreatePlanRequest req;
    req.set_kind(v1::PLAN_ADD_NODE);
    req.set_node_id("r3");
    req.set_group("g0");
    req.set_address("127.0.0.1:7003");
    v1::CreatePlanResponse resp;
    ASSERT_TRUE(coord.stub().CreatePlan(&ctx, req, &resp).ok());
  }
  MetricsRegistry registry;
  coordinator::RefreshCoordinatorMetrics(coord.core(), registry);
  RegisterBuildInfo(registry);
  const std::string rendered = registry.Render();
  const std::set<std::string> exported = RenderedFamilies(rendered);
  ASSERT_TRUE(exported.count("miroir_move_state_seconds")) << rendered;

  YAML::Node rules =
      YAML::LoadFile(std::string(MIROIR_SOURCE_DIR) + "/deploy/prometheus/alerts.yaml");
  std::set<std::string> alerts;
  int names_checked = 0;
  for (const auto& group : rules["groups"]) {
    for (const auto& rule : group["rules"]) {
      const std::string alert = rule["alert"].as<std::string>();
      const std::string expr = rule["expr"].as<std::string>();
      alerts.insert(alert);
      int in_rule = 0;
      for (const std::string& name : MetricNames(expr)) {
        EXPECT_TRUE(exported.count(name))
            << alert << " uses " << name << ", which the coordinator does not export";
        ++in_rule;
      }
      EXPECT_GT(in_rule, 0) << alert << " names no miroir metric";
      names_checked += in_rule;
    }
  }
  EXPECT_GE(names_checked, 12);
  for (const char* required :
       {"MiroirPlanFailed", "MiroirMoveStuck", "MiroirNodeUnreachable",
        "MiroirRecoveryPassesGrowing", "MiroirWorkerNotAcking", "MiroirCoordinatorLeaderMissing"}) {
    EXPECT_TRUE(alerts.count(required)) << "missing alert " << required;
  }
}

TEST(AlertRules, PlansAndNodesAreExportedByState) {
  TempDir dir;
  RunningCoordinator coord(dir.path(), FastConfig());
  grpc::ClientContext ctx;
  v1::InitClusterRequest req;
  req.set_fleet_yaml(kFleet);
  v1::InitClusterResponse resp;
  ASSERT_TRUE(coord.stub().InitCluster(&ctx, req, &resp).ok());
  ASSERT_TRUE(coord.core().MarkNodeFailed("s1").ok());
  MetricsRegistry registry;
  coordinator::RefreshCoordinatorMetrics(coord.core(), registry);
  const std::string out = registry.Render();
  EXPECT_NE(out.find("miroir_plans{state=\"failed\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("miroir_reshards{state=\"failed\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("miroir_node_status{node=\"s1\",status=\"failed\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("miroir_node_status{node=\"s1\",status=\"active\"} 0\n"), std::string::npos);
  EXPECT_NE(out.find("miroir_node_status{node=\"r0\",status=\"active\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("miroir_coordinator_leader 1\n"), std::string::npos);
  EXPECT_NE(out.find("miroir_check_errors "), std::string::npos);
}

}  // namespace
}  // namespace miroir::testing
