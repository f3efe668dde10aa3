#include "coordinator/reshard_machine.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/reshard_names.h"

namespace miroir::coordinator {
namespace {

using R = v1::ReshardState;
using S = v1::ReshardStep;

const std::vector<R> kAll = {v1::RESHARD_SHADOW,      v1::RESHARD_DUAL_WRITE,
                             v1::RESHARD_BACKFILL,    v1::RESHARD_CATCHING_UP,
                             v1::RESHARD_VERIFY,      v1::RESHARD_SWAP_PAUSED,
                             v1::RESHARD_SWAP_FENCED, v1::RESHARD_SWAP_FINAL_DELTA,
                             v1::RESHARD_RETENTION,   v1::RESHARD_CLEANUP,
                             v1::RESHARD_DONE,        v1::RESHARD_ABORTING,
                             v1::RESHARD_ABORTED,     v1::RESHARD_ROLLING_BACK,
                             v1::RESHARD_ROLLED_BACK, v1::RESHARD_FAILED};

v1::ReshardRecord PlanIn(R state) {
  v1::ReshardRecord p;
  p.set_id(7);
  p.set_index("movies");
  p.set_old_shards(8);
  p.set_new_shards(16);
  p.set_state(state);
  return p;
}

// Drives a plan along `path` from its current state; every step must be legal.
void Walk(v1::ReshardRecord* p, const std::vector<R>& path, int64_t* now) {
  for (R to : path) {
    auto ev = ReshardMachine::Transition(p, to, "step", ++*now, 0);
    ASSERT_TRUE(ev.ok()) << ev.status();
  }
}

TEST(ReshardMachineTest, EveryStateOfTheEnumIsInTheTable) {
  for (int i = v1::ReshardState_MIN; i <= v1::ReshardState_MAX; ++i) {
    if (!v1::ReshardState_IsValid(i)) continue;
    const auto s = static_cast<R>(i);
    EXPECT_EQ(ReshardMachine::IsKnown(s), s != v1::RESHARD_STATE_UNSPECIFIED)
        << ReshardStateName(s);
  }
  EXPECT_EQ(kAll.size(), static_cast<size_t>(v1::ReshardState_MAX));
}

TEST(ReshardMachineTest, UnknownStateHasNoTransitionAndIsLeftUnchanged) {
  for (R unknown : {v1::RESHARD_STATE_UNSPECIFIED, static_cast<R>(99)}) {
    v1::ReshardRecord p = PlanIn(unknown);
    for (R to : kAll) EXPECT_FALSE(ReshardMachine::IsLegal(unknown, to));
    auto ev = ReshardMachine::Transition(&p, v1::RESHARD_FAILED, "x", 5, 0);
    ASSERT_EQ(ev.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(ev.status().message().find("unknown -> failed"), std::string::npos) << ev.status();
    EXPECT_EQ(p.state(), unknown) << "an unknown state silently became another";
    EXPECT_EQ(p.state_since_ms(), 0);
  }
}

TEST(ReshardMachineTest, ForwardPathEmitsOneEventPerTransition) {
  v1::ReshardRecord p = PlanIn(v1::RESHARD_SHADOW);
  const std::vector<R> path = {v1::RESHARD_DUAL_WRITE,       v1::RESHARD_BACKFILL,
                               v1::RESHARD_CATCHING_UP,      v1::RESHARD_VERIFY,
                               v1::RESHARD_SWAP_PAUSED,      v1::RESHARD_SWAP_FENCED,
                               v1::RESHARD_SWAP_FINAL_DELTA, v1::RESHARD_RETENTION,
                               v1::RESHARD_CLEANUP,          v1::RESHARD_DONE};
  R prev = p.state();
  int64_t now = 1000;
  for (R to : path) {
    auto ev = ReshardMachine::Transition(&p, to, "ok", ++now, 42);
    ASSERT_TRUE(ev.ok()) << ev.status();
    EXPECT_EQ(ev->from(), ReshardStateName(prev));
    EXPECT_EQ(ev->to(), ReshardStateName(to));
    EXPECT_EQ(ev->plan_id(), 7u);
    EXPECT_EQ(ev->epoch(), 42u);
    EXPECT_EQ(ev->time_ms(), now);
    EXPECT_EQ(p.state_since_ms(), now);
    prev = to;
  }
  EXPECT_TRUE(ReshardMachine::IsTerminal(p.state()));
  EXPECT_EQ(p.swapped_at_ms(), 1008);  // the flip was the 8th step
}

TEST(ReshardMachineTest, IllegalTransitionLeavesPlanUnchanged) {
  v1::ReshardRecord p = PlanIn(v1::RESHARD_BACKFILL);
  p.set_state_since_ms(5);
  auto ev = ReshardMachine::Transition(&p, v1::RESHARD_RETENTION, "skip", 99, 0);
  ASSERT_EQ(ev.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(ev.status().message().find("backfill -> retention"), std::string::npos);
  EXPECT_EQ(p.state(), v1::RESHARD_BACKFILL);
  EXPECT_EQ(p.state_since_ms(), 5);
  EXPECT_EQ(p.swapped_at_ms(), 0);
}

TEST(ReshardMachineTest, TerminalStatesHaveNoExit) {
  for (R term : {v1::RESHARD_DONE, v1::RESHARD_ABORTED, v1::RESHARD_ROLLED_BACK}) {
    EXPECT_TRUE(ReshardMachine::IsTerminal(term));
    for (R to : kAll) EXPECT_FALSE(ReshardMachine::IsLegal(term, to));
  }
}

TEST(ReshardMachineTest, AbortOnlyBeforeSwap) {
  for (R s : {v1::RESHARD_SHADOW, v1::RESHARD_DUAL_WRITE, v1::RESHARD_BACKFILL,
              v1::RESHARD_CATCHING_UP, v1::RESHARD_VERIFY, v1::RESHARD_SWAP_PAUSED,
              v1::RESHARD_SWAP_FENCED, v1::RESHARD_SWAP_FINAL_DELTA}) {
    v1::ReshardRecord p = PlanIn(s);
    EXPECT_TRUE(ReshardMachine::CanAbort(p)) << ReshardStateName(s);
    EXPECT_FALSE(ReshardMachine::CanRollback(p)) << ReshardStateName(s);
    EXPECT_FALSE(ReshardMachine::IsSwapped(p));
    ASSERT_TRUE(ReshardMachine::Transition(&p, v1::RESHARD_ABORTING, "abort", 1, 0).ok());
    EXPECT_EQ(p.failed_from(), s);
  }
  for (R s :
       {v1::RESHARD_RETENTION, v1::RESHARD_CLEANUP, v1::RESHARD_DONE, v1::RESHARD_ROLLING_BACK}) {
    v1::ReshardRecord p = PlanIn(s);
    EXPECT_FALSE(ReshardMachine::CanAbort(p)) << ReshardStateName(s);
    EXPECT_TRUE(ReshardMachine::IsSwapped(p));
    EXPECT_FALSE(ReshardMachine::Transition(&p, v1::RESHARD_ABORTING, "abort", 1, 0).ok());
  }
}

TEST(ReshardMachineTest, RollbackOnlyInRetention) {
  v1::ReshardRecord p = PlanIn(v1::RESHARD_SHADOW);
  int64_t now = 0;
  Walk(&p,
       {v1::RESHARD_DUAL_WRITE, v1::RESHARD_BACKFILL, v1::RESHARD_CATCHING_UP,
        v1::RESHARD_SWAP_PAUSED, v1::RESHARD_SWAP_FENCED, v1::RESHARD_SWAP_FINAL_DELTA,
        v1::RESHARD_RETENTION},
       &now);
  EXPECT_TRUE(ReshardMachine::CanRollback(p));
  EXPECT_TRUE(ReshardMachine::CanComplete(p));
  Walk(&p, {v1::RESHARD_ROLLING_BACK, v1::RESHARD_ROLLED_BACK}, &now);
  EXPECT_TRUE(ReshardMachine::IsTerminal(p.state()));
  EXPECT_FALSE(ReshardMachine::BlocksNewReshard(p));
}

TEST(ReshardMachineTest, FailedExitDependsOnSideOfSwap) {
  // Failed during backfill: abort yes, rollback no.
  v1::ReshardRecord before = PlanIn(v1::RESHARD_BACKFILL);
  ASSERT_TRUE(ReshardMachine::Transition(&before, v1::RESHARD_FAILED, "worker lost", 1, 0).ok());
  EXPECT_EQ(before.failed_from(), v1::RESHARD_BACKFILL);
  EXPECT_TRUE(ReshardMachine::CanAbort(before));
  EXPECT_FALSE(ReshardMachine::CanRollback(before));
  EXPECT_FALSE(ReshardMachine::Transition(&before, v1::RESHARD_ROLLING_BACK, "x", 2, 0).ok());
  EXPECT_EQ(before.state(), v1::RESHARD_FAILED);
  EXPECT_TRUE(ReshardMachine::Transition(&before, v1::RESHARD_ABORTING, "x", 3, 0).ok());

  // Failed while rolling back: rollback may be retried, abort may not.
  v1::ReshardRecord after = PlanIn(v1::RESHARD_ROLLING_BACK);
  ASSERT_TRUE(ReshardMachine::Transition(&after, v1::RESHARD_FAILED, "fence failed", 1, 0).ok());
  EXPECT_FALSE(ReshardMachine::CanAbort(after));
  EXPECT_TRUE(ReshardMachine::CanRollback(after));
  EXPECT_TRUE(ReshardMachine::IsSwapped(after));
  EXPECT_FALSE(ReshardMachine::Transition(&after, v1::RESHARD_ABORTING, "x", 2, 0).ok());
  EXPECT_TRUE(ReshardMachine::Transition(&after, v1::RESHARD_ROLLING_BACK, "retry", 3, 0).ok());
  // A second failure keeps the original side of the swap.
  ASSERT_TRUE(ReshardMachine::Transition(&after, v1::RESHARD_FAILED, "again", 4, 0).ok());
  EXPECT_EQ(after.failed_from(), v1::RESHARD_ROLLING_BACK);
}

TEST(ReshardMachineTest, FailedAbortMayBeRetried) {
  v1::ReshardRecord p = PlanIn(v1::RESHARD_VERIFY);
  int64_t now = 0;
  Walk(&p, {v1::RESHARD_ABORTING, v1::RESHARD_FAILED}, &now);
  EXPECT_EQ(p.failed_from(), v1::RESHARD_ABORTING);
  EXPECT_TRUE(ReshardMachine::CanAbort(p));
  EXPECT_FALSE(ReshardMachine::IsSwapped(p));
  Walk(&p, {v1::RESHARD_ABORTING, v1::RESHARD_ABORTED}, &now);
  EXPECT_FALSE(ReshardMachine::BlocksNewReshard(p));
}

TEST(ReshardMachineTest, CatchUpLoopsBackWhenFencingFails) {
  v1::ReshardRecord p = PlanIn(v1::RESHARD_SWAP_PAUSED);
  int64_t now = 0;
  // Too few fenced owners: back to catch-up, then around again.
  Walk(&p,
       {v1::RESHARD_CATCHING_UP, v1::RESHARD_VERIFY, v1::RESHARD_CATCHING_UP,
        v1::RESHARD_SWAP_PAUSED, v1::RESHARD_SWAP_FENCED, v1::RESHARD_CATCHING_UP,
        v1::RESHARD_SWAP_PAUSED, v1::RESHARD_SWAP_FENCED, v1::RESHARD_SWAP_FINAL_DELTA,
        v1::RESHARD_RETENTION},
       &now);
  EXPECT_EQ(p.state(), v1::RESHARD_RETENTION);
}

TEST(ReshardMachineTest, RetentionBlocksNewReshardUntilComplete) {
  v1::ReshardRecord p = PlanIn(v1::RESHARD_SWAP_FINAL_DELTA);
  ASSERT_TRUE(ReshardMachine::Transition(&p, v1::RESHARD_RETENTION, "flip", 1'000, 9).ok());
  EXPECT_TRUE(ReshardMachine::BlocksNewReshard(p));
  const int64_t hour = 3600LL * 1000;
  EXPECT_FALSE(ReshardMachine::RetentionExpired(p, 1'000 + 48 * hour - 1, 48));
  EXPECT_TRUE(ReshardMachine::RetentionExpired(p, 1'000 + 48 * hour, 48));
  int64_t now = 2'000;
  Walk(&p, {v1::RESHARD_CLEANUP, v1::RESHARD_DONE}, &now);
  EXPECT_FALSE(ReshardMachine::BlocksNewReshard(p));
  EXPECT_FALSE(ReshardMachine::RetentionExpired(p, 1'000 + 100 * hour, 48));
}

TEST(ReshardMachineTest, StepIsSetOnlyInAStateThatAllowsIt) {
  v1::ReshardRecord p = PlanIn(v1::RESHARD_SWAP_PAUSED);
  ASSERT_TRUE(ReshardMachine::SetStep(&p, v1::RESHARD_STEP_PAUSING).ok());
  ASSERT_TRUE(ReshardMachine::SetStep(&p, v1::RESHARD_STEP_FENCING).ok());
  EXPECT_EQ(p.step(), v1::RESHARD_STEP_FENCING);
  // Dropping a generation is no swap step: refused, the step stays.
  absl::Status st = ReshardMachine::SetStep(&p, v1::RESHARD_STEP_DROPPING);
  ASSERT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("dropping in state swap_paused"), std::string::npos) << st;
  EXPECT_EQ(p.step(), v1::RESHARD_STEP_FENCING);

  v1::ReshardRecord c = PlanIn(v1::RESHARD_CATCHING_UP);
  EXPECT_FALSE(ReshardMachine::SetStep(&c, v1::RESHARD_STEP_PAUSING).ok());
  EXPECT_EQ(c.step(), v1::RESHARD_STEP_NONE);
  EXPECT_FALSE(ReshardMachine::SetStep(&c, static_cast<S>(77)).ok());
  EXPECT_TRUE(ReshardMachine::SetStep(&c, v1::RESHARD_STEP_NONE).ok());
}

TEST(ReshardMachineTest, EveryRollbackStepIsLegalWhileRollingBack) {
  v1::ReshardRecord p = PlanIn(v1::RESHARD_ROLLING_BACK);
  for (S step : {v1::RESHARD_STEP_START, v1::RESHARD_STEP_CATCH_UP, v1::RESHARD_STEP_PAUSING,
                 v1::RESHARD_STEP_FENCING, v1::RESHARD_STEP_FINAL_DELTA, v1::RESHARD_STEP_FLIPPED,
                 v1::RESHARD_STEP_DROPPING}) {
    EXPECT_TRUE(ReshardMachine::SetStep(&p, step).ok()) << ReshardStepName(step);
  }
  EXPECT_FALSE(ReshardMachine::SetStep(&p, v1::RESHARD_STEP_UNROUTE).ok());
  v1::ReshardRecord a = PlanIn(v1::RESHARD_ABORTING);
  for (S step : {v1::RESHARD_STEP_UNROUTE, v1::RESHARD_STEP_UNROUTED, v1::RESHARD_STEP_DROPPING}) {
    EXPECT_TRUE(ReshardMachine::SetStep(&a, step).ok()) << ReshardStepName(step);
  }
  EXPECT_FALSE(ReshardMachine::SetStep(&a, v1::RESHARD_STEP_START).ok());
}

TEST(ReshardMachineTest, TransitionClearsAStepTheNewStateDoesNotAllow) {
  // The fence came up short: back to catching_up, which holds no swap step.
  v1::ReshardRecord p = PlanIn(v1::RESHARD_SWAP_PAUSED);
  ASSERT_TRUE(ReshardMachine::SetStep(&p, v1::RESHARD_STEP_FENCING).ok());
  ASSERT_TRUE(ReshardMachine::Transition(&p, v1::RESHARD_CATCHING_UP, "short", 1, 0).ok());
  EXPECT_EQ(p.step(), v1::RESHARD_STEP_NONE);

  // The final delta is the step swap_fenced carries on.
  v1::ReshardRecord f = PlanIn(v1::RESHARD_SWAP_PAUSED);
  ASSERT_TRUE(ReshardMachine::SetStep(&f, v1::RESHARD_STEP_FINAL_DELTA).ok());
  ASSERT_TRUE(ReshardMachine::Transition(&f, v1::RESHARD_SWAP_FENCED, "fenced", 1, 0).ok());
  EXPECT_EQ(f.step(), v1::RESHARD_STEP_FINAL_DELTA);

  // Failed keeps the step it failed in, and a retried cleanup resumes with it.
  v1::ReshardRecord c = PlanIn(v1::RESHARD_CLEANUP);
  ASSERT_TRUE(ReshardMachine::SetStep(&c, v1::RESHARD_STEP_DROPPING).ok());
  ASSERT_TRUE(ReshardMachine::Transition(&c, v1::RESHARD_FAILED, "task failed", 1, 0).ok());
  EXPECT_EQ(c.step(), v1::RESHARD_STEP_DROPPING);
  EXPECT_EQ(c.failed_from(), v1::RESHARD_CLEANUP);
  ASSERT_TRUE(ReshardMachine::Transition(&c, v1::RESHARD_CLEANUP, "retry", 2, 0).ok());
  EXPECT_EQ(c.step(), v1::RESHARD_STEP_DROPPING);
}

TEST(ReshardMachineTest, EstimateFollowsDesignFormula) {
  ReshardEstimateInput in;
  in.documents = 1'000'000;
  in.bytes = 2'000'000'000;
  in.rf = 3;
  in.groups = 2;
  in.backfill_dps = 5'000;
  in.write_dps = 1'000;
  auto est = EstimateReshard(in);
  ASSERT_TRUE(est.ok()) << est.status();
  EXPECT_DOUBLE_EQ(est->peak_node_writes_per_s, 5'000.0 * 6 + 2 * 1'000.0 * 6);
  EXPECT_EQ(est->storage_peak_bytes, 2ULL * 2'000'000'000 * 6);
  EXPECT_DOUBLE_EQ(est->duration_s, 200.0);

  in.backfill_dps = 0;
  auto bad = EstimateReshard(in);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("backfill_dps"), std::string::npos);
}

}  // namespace
}  // namespace miroir::coordinator
