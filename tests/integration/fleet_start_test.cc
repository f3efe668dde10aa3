// The Fleet harness against the real programs: a cluster starts, initialises,
// registers its workers, answers miroir-ctl, and survives a coordinator
// SIGKILL + restart (workers re-register on the same address).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness/fleet.h"
#include "harness/temp_dir.h"

namespace miroir::testing {
namespace {

using ::testing::HasSubstr;

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

  f.node("r0").proxy->Pass();
  CheckOptions co = f.CheckOptionsFor("products");
  co.quiesce_timeout = absl::Seconds(60);
  auto report = CheckPromise(writer.records(), co);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

}  // namespace
}  // namespace miroir::testing
