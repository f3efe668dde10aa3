#include "coordinator/plan_controls.h"

#include <gtest/gtest.h>

namespace miroir::coordinator {
namespace {

// A plan 10 with a move 11 in `state` whose copy task 12 is of `kind`.
ClusterState OnePlan(v1::PlanState plan_state, v1::MoveState state, v1::TaskKind kind,
                     bool skip_delta = false) {
  ClusterState s;
  v1::Plan p;
  p.set_id(10);
  p.set_state(plan_state);
  p.set_throttle_docs_per_s(20);
  p.set_skip_delta_pass(skip_delta);
  s.plans[10] = p;
  v1::Move m;
  m.set_id(11);
  m.set_plan_id(10);
  m.set_state(state);
  m.set_task_id(12);
  m.set_remaining(5000);
  s.moves[11] = m;
  TaskRecord t;
  t.task.set_id(12);
  t.task.set_kind(kind);
  t.task.set_move_id(11);
  t.task.set_throttle_docs_per_s(20);
  s.tasks[12] = t;
  return s;
}

v1::UpdatePlanRequest Throttle(uint64_t id, int64_t throttle) {
  v1::UpdatePlanRequest r;
  r.set_id(id);
  r.set_throttle_docs_per_s(throttle);
  return r;
}

TEST(PlanControls, UpdateSetsTheThrottleOnThePlanAndItsTasksAndRelaunchesCopies) {
  ClusterState s = OnePlan(v1::PLAN_RUNNING, v1::MOVE_COPYING, v1::TASK_BACKFILL);
  Change c;
  std::vector<uint64_t> relaunch;
  ASSERT_TRUE(PlanUpdateChange(s, Throttle(10, 500), CoordinatorConfig(), 7, &c, &relaunch).ok());
  EXPECT_EQ(c.plans.at(10).throttle_docs_per_s(), 500u);
  EXPECT_EQ(c.tasks.at(12).throttle_docs_per_s(), 500u);
  EXPECT_EQ(relaunch, std::vector<uint64_t>{12});
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].reason(), "updated by operator: throttle 20 -> 500 docs/s");
}

TEST(PlanControls, UpdateOfACutoverTaskDoesNotRelaunchIt) {
  ClusterState s = OnePlan(v1::PLAN_RUNNING, v1::MOVE_FINAL_DELTA, v1::TASK_FINAL_DELTA);
  Change c;
  std::vector<uint64_t> relaunch;
  ASSERT_TRUE(PlanUpdateChange(s, Throttle(10, 500), CoordinatorConfig(), 7, &c, &relaunch).ok());
  EXPECT_EQ(c.tasks.at(12).throttle_docs_per_s(), 500u);
  EXPECT_TRUE(relaunch.empty());
}

TEST(PlanControls, UpdateRefusesBadInputAndChangesNothing) {
  ClusterState s = OnePlan(v1::PLAN_RUNNING, v1::MOVE_COPYING, v1::TASK_BACKFILL);
  CoordinatorConfig cfg;
  std::vector<uint64_t> relaunch;
  struct Case {
    v1::UpdatePlanRequest req;
    absl::StatusCode code;
    std::string field;
  };
  v1::UpdatePlanRequest none;
  none.set_id(10);
  v1::UpdatePlanRequest window;
  window.set_id(10);
  window.set_schedule_window("no-such-window");
  std::vector<Case> cases = {
      {Throttle(10, 0), absl::StatusCode::kInvalidArgument, "throttle_docs_per_s:"},
      {Throttle(10, -3), absl::StatusCode::kInvalidArgument, "throttle_docs_per_s:"},
      {Throttle(0, 5), absl::StatusCode::kInvalidArgument, "id:"},
      {Throttle(99, 5), absl::StatusCode::kNotFound, "id: unknown plan 99"},
      {none, absl::StatusCode::kInvalidArgument, "nothing to change"},
      {window, absl::StatusCode::kInvalidArgument, "schedule_window:"},
  };
  for (const auto& k : cases) {
    Change c;
    absl::Status st = PlanUpdateChange(s, k.req, cfg, 7, &c, &relaunch);
    EXPECT_EQ(st.code(), k.code) << st;
    EXPECT_NE(st.message().find(k.field), std::string::npos) << st;
    EXPECT_TRUE(c.empty());
  }
  for (v1::PlanState ended :
       {v1::PLAN_DONE, v1::PLAN_FAILED, v1::PLAN_ABORTED, v1::PLAN_ABORTING}) {
    ClusterState e = OnePlan(ended, v1::MOVE_COPYING, v1::TASK_BACKFILL);
    Change c;
    EXPECT_EQ(PlanUpdateChange(e, Throttle(10, 5), cfg, 7, &c, &relaunch).code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(c.empty());
  }
  EXPECT_TRUE(relaunch.empty());
}

TEST(PlanControls, UpdateSetsAndClearsTheScheduleWindow) {
  ClusterState s = OnePlan(v1::PLAN_PAUSED, v1::MOVE_CATCHING_UP, v1::TASK_CATCH_UP);
  CoordinatorConfig cfg;
  cfg.schedule_windows["night"] = "01:00-05:00";
  v1::UpdatePlanRequest r;
  r.set_id(10);
  r.set_schedule_window("night");
  Change c;
  std::vector<uint64_t> relaunch;
  ASSERT_TRUE(PlanUpdateChange(s, r, cfg, 7, &c, &relaunch).ok());
  EXPECT_EQ(c.plans.at(10).schedule_window(), "night");
  EXPECT_EQ(c.plans.at(10).throttle_docs_per_s(), 20u);
  EXPECT_TRUE(c.tasks.empty());
  EXPECT_EQ(c.events[0].reason(), "updated by operator: schedule window (config default) -> night");
}

TEST(PlanControls, ForcedCutoverMarksTheMovesCatchingUp) {
  ClusterState s = OnePlan(v1::PLAN_RUNNING, v1::MOVE_CATCHING_UP, v1::TASK_CATCH_UP);
  Change c;
  ASSERT_TRUE(ForcedCutoverChange(s, 10, true, CoordinatorConfig(), 7, &c).ok());
  EXPECT_TRUE(c.moves.at(11).force_cutover());
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_NE(c.events[0].reason().find("cutover forced by operator: 1 moves"), std::string::npos);
  // Again: already forced, nothing left to force.
  ClusterState again = s;
  again.moves[11].set_force_cutover(true);
  Change c2;
  EXPECT_EQ(ForcedCutoverChange(again, 10, true, CoordinatorConfig(), 7, &c2).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(PlanControls, ForcedCutoverIsRefusedByTheGatesAndChangesNothing) {
  CoordinatorConfig cfg;
  ClusterState s = OnePlan(v1::PLAN_RUNNING, v1::MOVE_CATCHING_UP, v1::TASK_CATCH_UP);
  Change c;
  EXPECT_EQ(ForcedCutoverChange(s, 10, false, cfg, 7, &c).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ForcedCutoverChange(s, 42, true, cfg, 7, &c).code(), absl::StatusCode::kNotFound);
  ClusterState copying = OnePlan(v1::PLAN_RUNNING, v1::MOVE_COPYING, v1::TASK_BACKFILL);
  EXPECT_EQ(ForcedCutoverChange(copying, 10, true, cfg, 7, &c).code(),
            absl::StatusCode::kFailedPrecondition);
  ClusterState paused = OnePlan(v1::PLAN_PAUSED, v1::MOVE_CATCHING_UP, v1::TASK_CATCH_UP);
  EXPECT_EQ(ForcedCutoverChange(paused, 10, true, cfg, 7, &c).code(),
            absl::StatusCode::kFailedPrecondition);
  // Anti-entropy off and the delta skipped: the delta-skip gate, force or not.
  cfg.anti_entropy.enabled = false;
  ClusterState skip = OnePlan(v1::PLAN_RUNNING, v1::MOVE_CATCHING_UP, v1::TASK_CATCH_UP, true);
  absl::Status st = ForcedCutoverChange(skip, 10, true, cfg, 7, &c);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find(kDeltaSkipRefusal), std::string::npos) << st;
  EXPECT_TRUE(c.empty());
}

}  // namespace
}  // namespace miroir::coordinator
