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

// Convergence under writes (issue 19 item 5): judged by the final delta's
// estimated duration against max_write_stall, not by an index-wide count.
constexpr absl::Duration kStall = absl::Seconds(2);  // budget: 1000 ms
constexpr absl::Duration kCatchUpMax = absl::Minutes(5);

CatchUpRound Round(uint64_t documents, int64_t round_ms, uint64_t previous_rate = 0) {
  CatchUpRound r;
  r.documents = documents;
  r.started_ms = 1'000'000;
  r.now_ms = r.started_ms + round_ms;
  r.previous_rate = previous_rate;
  r.catch_up_since_ms = r.started_ms;
  return r;
}

TEST(CatchUpVerdictTest, ABusyRoundThatCopiesFastConvergesAboveTheThreshold) {
  // 1,450 documents (above catch_up_threshold 1000) in 300 ms: about 4,833 docs/s,
  // so the final delta of a round's worth takes ~300 ms, inside 1000 ms.
  const CatchUpVerdict v = JudgeCatchUpRound(Round(1450, 300), {}, 1000, kStall, kCatchUpMax);
  EXPECT_TRUE(v.converged);
  EXPECT_EQ(v.round_ms, 300u);
  EXPECT_EQ(v.copy_rate_docs_per_s, 4833u);
  EXPECT_EQ(v.estimated_final_delta_ms, 301u);
  EXPECT_TRUE(v.message.empty());
}

TEST(CatchUpVerdictTest, ARoundWhoseFinalDeltaWouldOverrunHalfTheStallGoesOnAndSaysWhy) {
  v1::ReshardRecord r;
  r.set_catch_up_passes(4);
  const CatchUpVerdict v = JudgeCatchUpRound(Round(6000, 1500), r, 1000, kStall, kCatchUpMax);
  EXPECT_FALSE(v.converged);
  EXPECT_FALSE(v.not_converging);
  EXPECT_EQ(v.copy_rate_docs_per_s, 4000u);
  EXPECT_EQ(v.estimated_final_delta_ms, 1500u);
  EXPECT_EQ(v.message,
            "catch-up round 5 copied 6000 documents in 1500 ms; the final delta would take about "
            "1500 ms at 4000 docs/s, above half of max_write_stall (1000 ms)");
}

TEST(CatchUpVerdictTest, TheRateIsSmoothedOverRounds) {
  // 2,000 docs/s measured before, 6,000 now: 4,000; 3,000 documents then take 750 ms.
  const CatchUpVerdict v = JudgeCatchUpRound(Round(3000, 500, 2000), {}, 1000, kStall, kCatchUpMax);
  EXPECT_EQ(v.copy_rate_docs_per_s, 4000u);
  EXPECT_EQ(v.estimated_final_delta_ms, 750u);
  EXPECT_TRUE(v.converged);
}

TEST(CatchUpVerdictTest, SmallRoundsForcedCutoversAndIdleIndexesConvergeAsBefore) {
  EXPECT_TRUE(JudgeCatchUpRound(Round(1000, 60'000), {}, 1000, kStall, kCatchUpMax).converged)
      << "at the threshold, however slow";
  EXPECT_TRUE(JudgeCatchUpRound(Round(0, 5), {}, 1000, kStall, kCatchUpMax).converged);
  CatchUpRound forced = Round(1'000'000, 60'000);
  forced.forced = true;
  EXPECT_TRUE(JudgeCatchUpRound(forced, {}, 1000, kStall, kCatchUpMax).converged);
  CatchUpRound unknown = Round(5000, 0);
  unknown.started_ms = 0;  // no round start recorded (an older record): no rate
  const CatchUpVerdict v = JudgeCatchUpRound(unknown, {}, 1000, kStall, kCatchUpMax);
  EXPECT_FALSE(v.converged);
  EXPECT_NE(v.message.find("the copy rate is not measured yet"), std::string::npos) << v.message;
}

TEST(CatchUpVerdictTest, PastCatchUpMaxItSaysNotConvergingAndGoesOn) {
  CatchUpRound r = Round(9000, 3000);
  r.catch_up_since_ms = r.now_ms - absl::ToInt64Milliseconds(kCatchUpMax);
  EXPECT_FALSE(JudgeCatchUpRound(r, {}, 1000, kStall, kCatchUpMax).not_converging)
      << "exactly catch_up_max: not yet";
  r.catch_up_since_ms -= 1;
  v1::ReshardRecord rec;
  rec.set_index("products");
  const CatchUpVerdict v = JudgeCatchUpRound(r, rec, 1000, kStall, kCatchUpMax);
  EXPECT_FALSE(v.converged);
  EXPECT_TRUE(v.not_converging);
  EXPECT_EQ(v.message.rfind("not converging after 5m: catch-up round 1 copied 9000", 0), 0u)
      << v.message;
  EXPECT_NE(v.message.find("; operator decides: throttle writes, force the swap (`miroir-ctl "
                           "reshard cutover --force --index products`) or abort (`miroir-ctl "
                           "reshard abort --index products`)"),
            std::string::npos)
      << v.message;
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
