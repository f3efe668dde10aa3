// The Fleet harness against the real programs: a cluster starts, initialises,
// registers its workers, answers miroir-ctl, and survives a coordinator
// SIGKILL + restart (workers re-register on the same address).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <regex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "chaos/chaos_faults.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"

namespace miroir::testing {
namespace {

using ::testing::HasSubstr;

// The worker's test-only flags refuse a bad value before starting anything:
// exit 2, one line naming the flag.
TEST(FleetStart, WorkerRefusesABadTestAckDelay) {
  TempDir tmp("worker_flags");
  for (const std::string bad : {"-5", "abc", "60001"}) {
    auto run = RunToCompletion(MIROIR_WORKER_BIN, {"--test-ack-delay-ms=" + bad}, tmp.path(),
                               absl::Seconds(20));
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_FALSE(run->timed_out) << bad;
    EXPECT_EQ(run->exit_code, 2) << bad;
    EXPECT_THAT(run->stderr_text, HasSubstr("--test-ack-delay-ms: Value " + bad)) << bad;
  }
}

TEST(FleetStart, InitialisesAndRegistersWorkers) {
  TempDir tmp("fleet");
  FleetOptions opts;
  opts.group_sizes = {2, 2};
  opts.workers = 2;
  auto fleet = Fleet::Start(tmp.path(), opts);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  auto st = f.Status();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(st->initialized());
  EXPECT_EQ(st->nodes_size(), 4);
  EXPECT_EQ(st->workers_size(), 2);
  EXPECT_THAT(st->indexes(), ::testing::ElementsAre("products"));

  auto ctl = f.Ctl({"status"});
  ASSERT_TRUE(ctl.ok()) << ctl.status();
  EXPECT_EQ(ctl->exit_code, 0) << ctl->stderr_text;
  EXPECT_THAT(ctl->stdout_text, HasSubstr("r3"));

  // A second init is refused and changes nothing.
  absl::Status again = f.InitCluster();
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists) << again;

  std::string address = f.coordinator_address();
  ASSERT_TRUE(f.RestartCoordinator().ok());
  EXPECT_EQ(f.coordinator_address(), address);
  ASSERT_TRUE(f.WaitForWorkers(2).ok());
  auto after = f.Status();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->initialized());
  EXPECT_GE(after->epoch(), st->epoch());
}

// The coordinator's Prometheus metrics (issue 3): plans, moves by state, the
// routing epoch and the live workers, read over HTTP from the real binary while
// a plan runs and after it ended.
TEST(FleetStart, CoordinatorMetricsFollowAPlan) {
  TempDir tmp("fleet-metrics");
  FleetOptions opts;
  opts.group_sizes = {2};
  opts.workers = 2;
  opts.coordinator_flags = {"--metrics-listen", "127.0.0.1:0"};
  auto fleet = Fleet::Start(tmp.path(), opts);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  std::smatch m;
  const std::string log = f.coordinator()->ReadLog();
  ASSERT_TRUE(std::regex_search(log, m, std::regex("metrics port ([0-9]+)"))) << log;
  const int port = std::stoi(m[1].str());
  ASSERT_GT(port, 0);

  // The gauges are refreshed once a second: poll (bounded) for the expected
  // scrape, then report the last one seen.
  auto eventually = [port](const std::function<bool(const std::string&)>& want) {
    std::string scrape;
    for (int i = 0; i < 50; ++i) {
      scrape = ScrapeMetrics(port);
      if (want(scrape)) return std::make_pair(true, scrape);
      absl::SleepFor(absl::Milliseconds(100));
    }
    return std::make_pair(false, scrape);
  };
  auto st = f.Status();
  ASSERT_TRUE(st.ok());
  auto idle = eventually([&](const std::string& m) {
    return MetricValue(m, "miroir_workers_live") == 2 &&
           MetricValue(m, "miroir_routing_epoch") == static_cast<double>(st->epoch()) &&
           MetricValue(m, "miroir_plans_active") == 0;
  });
  EXPECT_TRUE(idle.first) << idle.second;

  // A plan held in copying: documents to copy, its backfill throttled to 5/s
  // (an empty index would pass copying within one poll).
  WriterOptions wo = f.WriterOptionsFor("products");
  wo.keys = 200;
  wo.max_ops = 200;
  wo.load_first = true;
  wo.max_duration = absl::Seconds(30);
  TestWriter load(wo);
  ASSERT_TRUE(load.Run().ok());
  ASSERT_GT(load.stats().acked(), 100u);
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  miroir::v1::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(5);
  auto plan = f.CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto copying = f.WaitForMoveState(plan->id(), miroir::v1::MOVE_COPYING, absl::Seconds(30));
  ASSERT_TRUE(copying.ok()) << copying.status();
  auto busy = eventually([&](const std::string& m) {
    return MetricValue(m, "miroir_plans_active") == 1 &&
           m.find("miroir_moves{state=\"copying\"}") != std::string::npos &&
           MetricValue(m, "miroir_routing_epoch") > static_cast<double>(st->epoch());
  });
  EXPECT_TRUE(busy.first) << busy.second;

  grpc::ClientContext ctx;
  miroir::v1::PlanIdRequest id;
  id.set_id(plan->id());
  miroir::v1::GetPlanResponse resp;
  ASSERT_TRUE(f.coord().AbortPlan(&ctx, id, &resp).ok());
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(60));
  ASSERT_TRUE(end.ok()) << end.status();
  auto after =
      eventually([](const std::string& m) { return MetricValue(m, "miroir_plans_active") == 0; });
  EXPECT_TRUE(after.first) << after.second;
}

TEST(FleetStart, SpareNodeIsNotInTheFleetFile) {
  TempDir tmp("fleet");
  FleetOptions opts;
  opts.group_sizes = {1};
  opts.workers = 1;
  opts.init = false;
  auto fleet = Fleet::Start(tmp.path(), opts);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  auto spare = (*fleet)->AddNodeProcess("r9", "g0");
  ASSERT_TRUE(spare.ok()) << spare.status();
  std::string yaml = (*fleet)->FleetYaml();
  EXPECT_THAT(yaml, HasSubstr("r0"));
  EXPECT_THAT(yaml, ::testing::Not(HasSubstr("r9")));
  EXPECT_EQ(*(*fleet)->redis("r9").Command({"PING"}), "PONG");
}

}  // namespace
}  // namespace miroir::testing

namespace miroir::testing {
namespace {

// A node behind a proxy: the fleet file names the proxy; cutting it makes writes
// to its shards degrade (RG=2: the other group acks), and once the path is back
// the recovery passes the workers' misses caused bring the node up to date.
TEST(FleetStart, ProxiedNodeCutDegradesThenRecovers) {
  TempDir tmp("fleet");
  FleetOptions opts;
  opts.group_sizes = {1, 1};
  opts.workers = 1;
  opts.indexes = {{"products", 4, 1}};
  opts.proxied_nodes = {"r0"};
  auto fleet = Fleet::Start(tmp.path(), opts);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  EXPECT_THAT(f.FleetYaml(), HasSubstr(f.node("r0").proxy->address()));

  f.node("r0").proxy->Cut();
  WriterOptions wo = f.WriterOptionsFor("products");
  wo.keys = 40;
  wo.max_ops = 200;
  wo.streams = 1;
  wo.batch_size = 10;
  wo.delete_fraction = 0.2;
  wo.max_duration = absl::Seconds(30);
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Run().ok());
  WriterStats st = writer.stats();
  EXPECT_GT(st.acked(), 0u);
  EXPECT_GT(st.degraded, 0u) << "writes to r0's shards should be acked degraded";

  // Status shows the cut node's health from the workers' reports (bounded wait:
  // a worker reports every few seconds).
  auto health_of = [&f](const std::string& id) -> std::string {
    auto st = f.Status();
    if (!st.ok()) return "";
    for (const auto& h : st->health()) {
      if (h.node() == id) return h.reachable() ? "reachable" : "unreachable";
    }
    return "";
  };
  std::string cut;
  for (int i = 0; i < 100 && (cut = health_of("r0")) != "unreachable"; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(cut, "unreachable");
  EXPECT_EQ(health_of("r1"), "reachable");
  auto table = f.Ctl({"status"});
  ASSERT_TRUE(table.ok());
  EXPECT_THAT(table->stdout_text, HasSubstr("HEALTH"));
  EXPECT_THAT(table->stdout_text, HasSubstr("unreachable"));

  f.node("r0").proxy->Pass();
  std::string healed;
  for (int i = 0; i < 100 && (healed = health_of("r0")) != "reachable"; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(healed, "reachable");
  CheckOptions co = f.CheckOptionsFor("products");
  co.quiesce_timeout = absl::Seconds(60);
  auto report = CheckPromise(writer.records(), co);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

}  // namespace
}  // namespace miroir::testing
