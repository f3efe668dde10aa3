// Abort at each move state before `active` (DESIGN §6): the plan ends ABORTED,
// routing goes back to the old owners, the joining node holds nothing of the
// shards it was getting, and the writer's check holds. Each state is forced and
// held until the abort is in: the joining node r9 sits behind a proxy that holds
// its traffic (prepare, copying, catching_up, final_delta cannot finish while
// r9 does not answer), the workers' test-only ack delay holds the states
// that end on worker acks (dual_write, paused), and a schedule window that opens
// in two hours holds catching_up (a converged catch-up waits there for the
// window; before, catching_up was held by holding r9 once the state was seen,
// and under CI load the catch-up converged between the poll and the hold: the
// moves went on to final_delta and cleanup, failed on the held r9, and the plan
// ended FAILED instead of ABORTED). A state that is not reached
// fails the test. (Before: the states were only stretched by proxy delays, and
// a state passed too fast was reported as a GTEST_SKIP, i.e. as a pass.)
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "harness/move_scenario.h"
#include "harness/tcp_proxy.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

class AbortAt : public ::testing::TestWithParam<pb::MoveState> {};

TEST_P(AbortAt, RollsBackAndLosesNothing) {
  const pb::MoveState state = GetParam();
  TempDir tmp("abort");
  ScenarioOptions so;
  so.fleet.group_sizes = {2, 2};
  so.fleet.indexes = {{"products", 8, 1}};
  so.keys = 1500;
  // A catch-up that must copy little before pausing, and a stall budget longer
  // than the held final delta.
  so.fleet.coordinator_config["migration"]["catch_up_threshold"] = 5;
  so.fleet.coordinator_config["migration"]["max_write_stall"] = "30s";
  so.fleet.coordinator_config["migration"]["drain_timeout"] = "2s";
  const bool ack_held =
      state == pb::MOVE_DUAL_WRITE || state == pb::MOVE_PAUSED || state == pb::MOVE_FINAL_DELTA;
  // Every epoch's ack waits 3 s: dual_write (ends on every worker's E1 ack) and
  // paused (ends on every worker's E2 ack and the fences) last at least that.
  if (ack_held) so.fleet.worker_flags = {"--test-ack-delay-ms=3000"};
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0", /*proxied=*/true);
  ASSERT_TRUE(addr.ok());
  TcpProxy& proxy = *f.node("r9").proxy;
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  if (state == pb::MOVE_COPYING) req.set_throttle_docs_per_s(50);  // copying lasts seconds
  // prepare fences and wipes r9: it cannot finish while r9 does not answer.
  if (state == pb::MOVE_PREPARE || state == pb::MOVE_CATCHING_UP) proxy.Hold();
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  if (state == pb::MOVE_CATCHING_UP) {
    // A plan is refused outside its window, so the window is set while prepare
    // is held (the operator's `plan update`), then r9 answers again.
    auto up = f.Ctl({"plan", "update", absl::StrCat(plan->id()), "--schedule-window",
                     WindowAhead(absl::Hours(2))});
    proxy.Release();
    ASSERT_TRUE(up.ok()) << up.status();
    ASSERT_EQ(up->exit_code, 0) << up->stderr_text;
  }
  // copying writes into r9; final_delta copies into it: once the move is there
  // (or, for final_delta, paused just before), holding r9 keeps it there and
  // keeps every move short of `active`.
  if (state == pb::MOVE_COPYING || state == pb::MOVE_FINAL_DELTA) {
    const pb::MoveState before = state == pb::MOVE_FINAL_DELTA ? pb::MOVE_PAUSED : state;
    auto reached = f.WaitForMoveState(plan->id(), before, absl::Seconds(60));
    ASSERT_TRUE(reached.ok()) << reached.status();
    proxy.Hold();
  }
  auto at = f.WaitForMoveState(plan->id(), state, absl::Seconds(60));
  if (!at.ok()) proxy.Release();
  ASSERT_TRUE(at.ok()) << "state " << pb::MoveState_Name(state) << " not reached: " << at.status();
  auto aborted = AbortPlan(f, plan->id());
  proxy.Release();
  ASSERT_TRUE(aborted.ok()) << aborted.status();
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(60));
  ASSERT_TRUE(end.ok()) << end.status();
  // Moves that had already reached active finish (a rollback is a new move);
  // every other move is aborted, and at least the one we caught.
  EXPECT_EQ(end->state(), pb::PLAN_ABORTED) << DescribePlan(*end);
  int aborted_moves = 0;
  for (const auto& m : end->moves()) aborted_moves += m.state() == pb::MOVE_ABORTED;
  EXPECT_GT(aborted_moves, 0) << DescribePlan(*end);

  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  // The wrong-owner part of the check covers "the partial copy is wiped": r9 is
  // not an owner of an aborted move's shard, so any entry left there fails it.
  EXPECT_TRUE(report->ok()) << report->Summary();
}

INSTANTIATE_TEST_SUITE_P(States, AbortAt,
                         ::testing::Values(pb::MOVE_PREPARE, pb::MOVE_DUAL_WRITE, pb::MOVE_COPYING,
                                           pb::MOVE_CATCHING_UP, pb::MOVE_PAUSED,
                                           pb::MOVE_FINAL_DELTA),
                         [](const auto& info) { return pb::MoveState_Name(info.param); });

}  // namespace
}  // namespace miroir::testing
