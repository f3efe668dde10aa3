// Processes killed for real in the middle of a move (DESIGN §10): the
// backfilling worker (its task is re-leased to the other worker and resumes
// from the checkpoint), and the coordinator mid-copy and mid-pause (it resumes
// the plan from SQLite). The plan ends DONE and the writer's check holds.
#include <gtest/gtest.h>

#include <regex>

#include "harness/move_scenario.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

ScenarioOptions Options() {
  ScenarioOptions so;
  so.fleet.group_sizes = {2, 2};
  so.fleet.indexes = {{"products", 8, 1}};
  so.keys = 1500;
  return so;
}

// Index of the worker currently running a task, or -1.
int BusyWorker(Fleet& f) {
  auto st = f.Status();
  if (!st.ok()) return -1;
  for (const auto& w : st->workers()) {
    if (w.running_tasks() == 0) continue;
    for (int i = 0; i < f.worker_count(); ++i) {
      if (f.worker_address(i) == w.address()) return i;
    }
  }
  return -1;
}

TEST(MoveKill, BackfillingWorkerKilledTaskResumesElsewhere) {
  TempDir tmp("kill");
  auto sc = MoveScenario::Start(tmp.path(), Options());
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(100);  // each shard copy takes seconds
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto copying = f.WaitForMoveState(plan->id(), pb::MOVE_COPYING, absl::Seconds(30));
  ASSERT_TRUE(copying.ok()) << copying.status();
  int busy = -1;
  for (int i = 0; i < 200 && busy < 0; ++i) {
    busy = BusyWorker(f);
    if (busy < 0) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GE(busy, 0) << "no worker reported a running task";
  absl::SleepFor(absl::Milliseconds(700));  // let it checkpoint a page or two
  ASSERT_TRUE(f.KillWorker(busy).ok());

  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(50));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  // The survivor ran a re-leased task (lease generation > 1), i.e. it took over
  // the killed worker's task with its stored checkpoint. Evidence from the
  // worker's task log line "task N (KIND) lease G epoch E: ...".
  const int survivor = 1 - busy;
  std::string log = f.worker(survivor)->ReadLog();
  std::regex lease_re("task [0-9]+ \\((TASK_[A-Z_]+)\\) lease ([0-9]+)");
  uint64_t max_lease = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), lease_re);
       it != std::sregex_iterator(); ++it) {
    max_lease = std::max<uint64_t>(max_lease, std::stoull((*it)[2].str()));
  }
  EXPECT_GE(max_lease, 2u) << "no re-leased task ran on the surviving worker";
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

class CoordinatorKilled : public ::testing::TestWithParam<pb::MoveState> {};

TEST_P(CoordinatorKilled, PlanResumesAfterRestart) {
  TempDir tmp("kill");
  ScenarioOptions so = Options();
  // A cutover takes milliseconds: the workers' test-only ack delay keeps a move
  // in `paused` long enough to be seen there.
  if (GetParam() == pb::MOVE_PAUSED) so.fleet.worker_flags = {"--test-ack-delay-ms=3000"};
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  if (GetParam() == pb::MOVE_COPYING) req.set_throttle_docs_per_s(100);
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // The state is forced and must be reached (before: a state not observed was a
  // GTEST_SKIP, i.e. a pass): copying is throttled to seconds, paused is held by
  // the workers' ack delay.
  auto at = f.WaitForMoveState(plan->id(), GetParam(), absl::Seconds(60));
  ASSERT_TRUE(at.ok()) << "state " << pb::MoveState_Name(GetParam())
                       << " not reached: " << at.status();
  ASSERT_TRUE(f.KillCoordinator().ok());
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(f.RestartCoordinator().ok());

  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(50));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

INSTANTIATE_TEST_SUITE_P(States, CoordinatorKilled,
                         ::testing::Values(pb::MOVE_COPYING, pb::MOVE_PAUSED),
                         [](const auto& info) { return pb::MoveState_Name(info.param); });

}  // namespace
}  // namespace miroir::testing
