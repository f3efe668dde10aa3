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
