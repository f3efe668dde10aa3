// Backup and restore of the coordinator's state (issue 22 item 6): `miroir-ctl
// backup` while a plan runs and the writer writes, the coordinator SIGKILLed,
// its data dir wiped, `miroir-coordinator --restore FILE` on the same port: the
// plan resumes from the backup and finishes, nothing is lost or resurrected.
// Bad inputs (an existing --out, a restore into a data dir that holds a state,
// a file that is not a state) are refused and change nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "coordinator/state_restore.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/temp_dir.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;
using ::testing::HasSubstr;

// Runs miroir-coordinator with `args` to its exit (it must refuse before serving).
RunResult RunCoordinator(const std::vector<std::string>& args, const std::string& dir) {
  std::vector<std::string> all = {"--listen", "127.0.0.1:0"};
  all.insert(all.end(), args.begin(), args.end());
  auto r = RunToCompletion(MIROIR_COORDINATOR_BIN, all, dir, absl::Seconds(20));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : RunResult{};
}

TEST(BackupRestore, ARunningPlanResumesAfterBackupWipeAndRestore) {
  TempDir tmp("backup_restore");
  ScenarioOptions so;
  so.fleet.group_sizes = {2};
  so.fleet.indexes = {{"products", 4, 1}};
  so.fleet.coordinator_config["migration"]["backfill_batch_size"] = 10;
  so.keys = 800;
  so.write_rate = 100;
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(10);  // still copying when the coordinator dies
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string id = absl::StrCat(plan->id());
  ASSERT_TRUE(f.WaitForMoveState(plan->id(), pb::MOVE_COPYING).ok());

  // An existing --out is refused; nothing is written over it.
  const std::string out = tmp.path() + "/state.backup";
  {
    std::ofstream(out) << "keep me";
    auto r = f.Ctl({"backup", "--out", out});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, 2) << r->stderr_text;
    EXPECT_THAT(r->stderr_text, HasSubstr("--out:"));
    std::ifstream in(out);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(text, "keep me");
    std::filesystem::remove(out);
  }
  auto backup = f.Ctl({"backup", "--out", out, "--output", "json"});
  ASSERT_TRUE(backup.ok());
  ASSERT_EQ(backup->exit_code, 0) << backup->stderr_text;
  auto bj = nlohmann::json::parse(backup->stdout_text);
  const uint64_t backup_epoch = bj["epoch"].get<uint64_t>();
  EXPECT_EQ(bj["bytes"].get<uint64_t>(), std::filesystem::file_size(out));
  EXPECT_GT(backup_epoch, 0u);

  // The coordinator is lost with its disk.
  auto at_kill = f.GetPlan(plan->id());
  ASSERT_TRUE(at_kill.ok());
  for (const auto& m : at_kill->plan().moves()) {
    // The scenario needs every move short of its cutover at the kill (the backup
    // is older than any cutover): the throttle keeps them copying.
    ASSERT_LT(m.state(), pb::MOVE_PAUSED) << DescribePlan(at_kill->plan());
  }
  ASSERT_TRUE(f.KillCoordinator().ok());
  const std::string data = f.coordinator_data_dir();
  std::filesystem::remove_all(data);
  std::filesystem::create_directories(data);

  // Bad restores change nothing: a file that is not a state, a data dir with one.
  const std::string junk = tmp.path() + "/junk.db";
  std::ofstream(junk) << "no sqlite here";
  RunResult r1 = RunCoordinator({"--data-dir", data, "--restore", junk}, tmp.path());
  EXPECT_EQ(r1.exit_code, 2) << r1.stderr_text;
  EXPECT_THAT(r1.stderr_text, HasSubstr("is not a usable coordinator state"));
  EXPECT_FALSE(std::filesystem::exists(data + "/coordinator.db"));
  const std::string other = tmp.path() + "/other-data";
  std::filesystem::create_directories(other);
  std::filesystem::copy_file(out, other + "/coordinator.db");
  RunResult r2 = RunCoordinator({"--data-dir", other, "--restore", out}, tmp.path());
  EXPECT_EQ(r2.exit_code, 2) << r2.stderr_text;
  EXPECT_THAT(r2.stderr_text, HasSubstr("already exists"));

  // Restored on the same port: the epoch starts above anything published since.
  ASSERT_TRUE(f.StartCoordinatorWith({"--restore", out}).ok());
  auto status = f.Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_GE(status->epoch(), backup_epoch + coordinator::kRestoreEpochGap);
  ASSERT_TRUE(f.WaitForWorkers(f.worker_count()).ok());
  auto resumed = f.GetPlan(plan->id());
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_FALSE(PlanEnded(resumed->plan().state())) << DescribePlan(resumed->plan());

  // Let it finish sooner, then check the promise.
  auto up = f.Ctl({"plan", "update", id, "--throttle", "100000"});
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->exit_code, 0) << up->stderr_text;
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(120));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

}  // namespace
}  // namespace miroir::testing
