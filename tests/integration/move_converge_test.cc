// A catch-up that cannot converge (the writer is faster than the throttle)
// stays in catching_up and says so (DESIGN §6 step 3); it never pauses writes
// on its own. Once the writer stops, the delta shrinks and the move completes;
// the writer's check holds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness/move_scenario.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

TEST(MoveConverge, StaysCatchingUpAndSaysSoWhileTheWriterOutpacesIt) {
  TempDir tmp("converge");
  ScenarioOptions so;
  so.fleet.group_sizes = {1};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", 2, 1}};
  so.keys = 400;
  so.write_rate = 1500;
  so.delete_fraction = 0.1;
  so.fleet.coordinator_config["migration"]["catch_up_threshold"] = 1;
  so.fleet.coordinator_config["migration"]["catch_up_max"] = "2s";
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(50);  // far below the write rate
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();

  // Bounded wait for the move to report that it does not converge.
  bool said_so = false;
  pb::Plan last;
  for (int i = 0; i < 300 && !said_so; ++i) {
    auto p = f.GetPlan(plan->id());
    ASSERT_TRUE(p.ok()) << p.status();
    last = p->plan();
    ASSERT_FALSE(PlanEnded(last.state())) << DescribePlan(last);
    for (const auto& m : last.moves()) {
      EXPECT_NE(m.state(), pb::MOVE_PAUSED) << "paused while the delta was not small";
      EXPECT_NE(m.state(), pb::MOVE_ACTIVE) << DescribePlan(last);
      if (m.state() == pb::MOVE_CATCHING_UP &&
          m.message().find("not converging") != std::string::npos) {
        said_so = true;
      }
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(said_so) << "no move said it does not converge:\n" << DescribePlan(last);
  auto ctl = f.Ctl({"plan", "show", absl::StrCat(plan->id())});
  ASSERT_TRUE(ctl.ok());
  EXPECT_THAT(ctl->stdout_text, ::testing::HasSubstr("catching_up")) << ctl->stdout_text;

  // The operator's way out: stop the writes; the move then completes.
  (*sc)->writer().Stop();
  (*sc)->writer().Wait();
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(60));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

}  // namespace
}  // namespace miroir::testing
