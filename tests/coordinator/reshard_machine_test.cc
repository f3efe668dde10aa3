#include "coordinator/reshard_machine.h"

#include <gtest/gtest.h>

#include <vector>

namespace miroir::coordinator {
namespace {

using R = ReshardState;

const std::vector<R> kAll = {R::kShadow,    R::kDualWrite,   R::kBackfill,   R::kCatchingUp,
                             R::kVerify,    R::kSwapPaused,  R::kSwapFenced, R::kSwapFinalDelta,
                             R::kRetention, R::kCleanup,     R::kDone,       R::kAborting,
                             R::kAborted,   R::kRollingBack, R::kRolledBack, R::kFailed};

ReshardPlan PlanIn(R state) {
  ReshardPlan p;
  p.id = 7;
  p.index = "movies";
  p.old_shards = 8;
  p.new_shards = 16;
  p.state = state;
  return p;
}

// Drives a plan along `path` from its current state; every step must be legal.
void Walk(ReshardPlan* p, const std::vector<R>& path, int64_t* now) {
  for (R to : path) {
    auto ev = ReshardMachine::Transition(p, to, "step", ++*now, 0);
    ASSERT_TRUE(ev.ok()) << ev.status();
  }
}

TEST(ReshardMachineTest, NamesRoundTrip) {
  for (R s : kAll) {
    auto parsed = ParseReshardState(ReshardStateName(s));
    ASSERT_TRUE(parsed.ok()) << ReshardStateName(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(ParseReshardState("nope").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ReshardMachineTest, ForwardPathEmitsOneEventPerTransition) {
  ReshardPlan p = PlanIn(R::kShadow);
  const std::vector<R> path = {R::kDualWrite,  R::kBackfill,   R::kCatchingUp,     R::kVerify,
                               R::kSwapPaused, R::kSwapFenced, R::kSwapFinalDelta, R::kRetention,
                               R::kCleanup,    R::kDone};
  R prev = p.state;
  int64_t now = 1000;
  for (R to : path) {
    auto ev = ReshardMachine::Transition(&p, to, "ok", ++now, 42);
    ASSERT_TRUE(ev.ok()) << ev.status();
    EXPECT_EQ(ev->from(), ReshardStateName(prev));
    EXPECT_EQ(ev->to(), ReshardStateName(to));
    EXPECT_EQ(ev->plan_id(), 7u);
    EXPECT_EQ(ev->epoch(), 42u);
    EXPECT_EQ(ev->time_ms(), now);
    EXPECT_EQ(p.state_since_ms, now);
    prev = to;
  }
  EXPECT_TRUE(ReshardMachine::IsTerminal(p.state));
  EXPECT_EQ(p.swapped_at_ms, 1008);  // the flip was the 8th step
}

TEST(ReshardMachineTest, IllegalTransitionLeavesPlanUnchanged) {
  ReshardPlan p = PlanIn(R::kBackfill);
  p.state_since_ms = 5;
  auto ev = ReshardMachine::Transition(&p, R::kRetention, "skip", 99, 0);
  ASSERT_EQ(ev.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(ev.status().message().find("backfill -> retention"), std::string::npos);
  EXPECT_EQ(p.state, R::kBackfill);
  EXPECT_EQ(p.state_since_ms, 5);
  EXPECT_EQ(p.swapped_at_ms, 0);
}

TEST(ReshardMachineTest, TerminalStatesHaveNoExit) {
  for (R term : {R::kDone, R::kAborted, R::kRolledBack}) {
    EXPECT_TRUE(ReshardMachine::IsTerminal(term));
    for (R to : kAll) EXPECT_FALSE(ReshardMachine::IsLegal(term, to));
  }
}

TEST(ReshardMachineTest, AbortOnlyBeforeSwap) {
  for (R s : {R::kShadow, R::kDualWrite, R::kBackfill, R::kCatchingUp, R::kVerify, R::kSwapPaused,
              R::kSwapFenced, R::kSwapFinalDelta}) {
    ReshardPlan p = PlanIn(s);
    EXPECT_TRUE(ReshardMachine::CanAbort(p)) << ReshardStateName(s);
    EXPECT_FALSE(ReshardMachine::CanRollback(p)) << ReshardStateName(s);
    EXPECT_FALSE(ReshardMachine::IsSwapped(p));
    ASSERT_TRUE(ReshardMachine::Transition(&p, R::kAborting, "abort", 1, 0).ok());
    EXPECT_EQ(p.failed_from, s);
  }
  for (R s : {R::kRetention, R::kCleanup, R::kDone, R::kRollingBack}) {
    ReshardPlan p = PlanIn(s);
    EXPECT_FALSE(ReshardMachine::CanAbort(p)) << ReshardStateName(s);
    EXPECT_TRUE(ReshardMachine::IsSwapped(p));
    EXPECT_FALSE(ReshardMachine::Transition(&p, R::kAborting, "abort", 1, 0).ok());
  }
}

TEST(ReshardMachineTest, RollbackOnlyInRetention) {
  ReshardPlan p = PlanIn(R::kShadow);
  int64_t now = 0;
  Walk(&p,
       {R::kDualWrite, R::kBackfill, R::kCatchingUp, R::kSwapPaused, R::kSwapFenced,
        R::kSwapFinalDelta, R::kRetention},
       &now);
  EXPECT_TRUE(ReshardMachine::CanRollback(p));
  EXPECT_TRUE(ReshardMachine::CanComplete(p));
  Walk(&p, {R::kRollingBack, R::kRolledBack}, &now);
  EXPECT_TRUE(ReshardMachine::IsTerminal(p.state));
  EXPECT_FALSE(ReshardMachine::BlocksNewReshard(p));
}

TEST(ReshardMachineTest, FailedExitDependsOnSideOfSwap) {
  // Failed during backfill: abort yes, rollback no.
  ReshardPlan before = PlanIn(R::kBackfill);
  ASSERT_TRUE(ReshardMachine::Transition(&before, R::kFailed, "worker lost", 1, 0).ok());
  EXPECT_EQ(before.failed_from, R::kBackfill);
  EXPECT_TRUE(ReshardMachine::CanAbort(before));
  EXPECT_FALSE(ReshardMachine::CanRollback(before));
  EXPECT_FALSE(ReshardMachine::Transition(&before, R::kRollingBack, "x", 2, 0).ok());
  EXPECT_EQ(before.state, R::kFailed);
  EXPECT_TRUE(ReshardMachine::Transition(&before, R::kAborting, "x", 3, 0).ok());

  // Failed while rolling back: rollback may be retried, abort may not.
  ReshardPlan after = PlanIn(R::kRollingBack);
  ASSERT_TRUE(ReshardMachine::Transition(&after, R::kFailed, "fence failed", 1, 0).ok());
  EXPECT_FALSE(ReshardMachine::CanAbort(after));
  EXPECT_TRUE(ReshardMachine::CanRollback(after));
  EXPECT_TRUE(ReshardMachine::IsSwapped(after));
  EXPECT_FALSE(ReshardMachine::Transition(&after, R::kAborting, "x", 2, 0).ok());
  EXPECT_TRUE(ReshardMachine::Transition(&after, R::kRollingBack, "retry", 3, 0).ok());
  // A second failure keeps the original side of the swap.
  ASSERT_TRUE(ReshardMachine::Transition(&after, R::kFailed, "again", 4, 0).ok());
  EXPECT_EQ(after.failed_from, R::kRollingBack);
}

TEST(ReshardMachineTest, FailedAbortMayBeRetried) {
  ReshardPlan p = PlanIn(R::kVerify);
  int64_t now = 0;
  Walk(&p, {R::kAborting, R::kFailed}, &now);
  EXPECT_EQ(p.failed_from, R::kAborting);
  EXPECT_TRUE(ReshardMachine::CanAbort(p));
  EXPECT_FALSE(ReshardMachine::IsSwapped(p));
  Walk(&p, {R::kAborting, R::kAborted}, &now);
  EXPECT_FALSE(ReshardMachine::BlocksNewReshard(p));
}

TEST(ReshardMachineTest, CatchUpLoopsBackWhenFencingFails) {
  ReshardPlan p = PlanIn(R::kSwapPaused);
  int64_t now = 0;
  // Too few fenced owners: back to catch-up, then around again.
  Walk(&p,
       {R::kCatchingUp, R::kVerify, R::kCatchingUp, R::kSwapPaused, R::kSwapFenced, R::kCatchingUp,
        R::kSwapPaused, R::kSwapFenced, R::kSwapFinalDelta, R::kRetention},
       &now);
  EXPECT_EQ(p.state, R::kRetention);
}

TEST(ReshardMachineTest, RetentionBlocksNewReshardUntilComplete) {
  ReshardPlan p = PlanIn(R::kSwapFinalDelta);
  ASSERT_TRUE(ReshardMachine::Transition(&p, R::kRetention, "flip", 1'000, 9).ok());
  EXPECT_TRUE(ReshardMachine::BlocksNewReshard(p));
  const int64_t hour = 3600LL * 1000;
  EXPECT_FALSE(ReshardMachine::RetentionExpired(p, 1'000 + 48 * hour - 1, 48));
  EXPECT_TRUE(ReshardMachine::RetentionExpired(p, 1'000 + 48 * hour, 48));
  int64_t now = 2'000;
  Walk(&p, {R::kCleanup, R::kDone}, &now);
  EXPECT_FALSE(ReshardMachine::BlocksNewReshard(p));
  EXPECT_FALSE(ReshardMachine::RetentionExpired(p, 1'000 + 100 * hour, 48));
}

TEST(ReshardMachineTest, PhaseForMetric) {
  EXPECT_EQ(ReshardPhase(R::kShadow), 1);
  EXPECT_EQ(ReshardPhase(R::kDualWrite), 1);
  EXPECT_EQ(ReshardPhase(R::kBackfill), 2);
  EXPECT_EQ(ReshardPhase(R::kCatchingUp), 2);
  EXPECT_EQ(ReshardPhase(R::kVerify), 3);
  EXPECT_EQ(ReshardPhase(R::kSwapPaused), 4);
  EXPECT_EQ(ReshardPhase(R::kSwapFinalDelta), 4);
  EXPECT_EQ(ReshardPhase(R::kRollingBack), 4);
  EXPECT_EQ(ReshardPhase(R::kRetention), 5);
  EXPECT_EQ(ReshardPhase(R::kCleanup), 5);
  EXPECT_EQ(ReshardPhase(R::kDone), 0);
  EXPECT_EQ(ReshardPhase(R::kAborted), 0);
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
