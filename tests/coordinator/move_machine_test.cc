#include "coordinator/move_machine.h"

#include <gtest/gtest.h>

#include "common/clock.h"
#include "coordinator/cluster_state.h"

namespace miroir::coordinator {
namespace {

const std::vector<v1::MoveState> kAll = {
    v1::MOVE_PENDING,     v1::MOVE_PREPARE, v1::MOVE_DUAL_WRITE,  v1::MOVE_COPYING,
    v1::MOVE_CATCHING_UP, v1::MOVE_PAUSED,  v1::MOVE_FINAL_DELTA, v1::MOVE_ACTIVE,
    v1::MOVE_RECONCILING, v1::MOVE_CLEANUP, v1::MOVE_DONE,        v1::MOVE_FAILED,
    v1::MOVE_ABORTING,    v1::MOVE_ABORTED};

const std::set<std::pair<v1::MoveState, v1::MoveState>> kLegal = {
    {v1::MOVE_PENDING, v1::MOVE_PREPARE},         {v1::MOVE_PENDING, v1::MOVE_ABORTED},
    {v1::MOVE_PREPARE, v1::MOVE_DUAL_WRITE},      {v1::MOVE_PREPARE, v1::MOVE_FAILED},
    {v1::MOVE_PREPARE, v1::MOVE_ABORTING},        {v1::MOVE_DUAL_WRITE, v1::MOVE_COPYING},
    {v1::MOVE_DUAL_WRITE, v1::MOVE_FAILED},       {v1::MOVE_DUAL_WRITE, v1::MOVE_ABORTING},
    {v1::MOVE_COPYING, v1::MOVE_CATCHING_UP},     {v1::MOVE_COPYING, v1::MOVE_ACTIVE},
    {v1::MOVE_COPYING, v1::MOVE_FAILED},          {v1::MOVE_COPYING, v1::MOVE_ABORTING},
    {v1::MOVE_CATCHING_UP, v1::MOVE_PAUSED},      {v1::MOVE_CATCHING_UP, v1::MOVE_COPYING},
    {v1::MOVE_CATCHING_UP, v1::MOVE_FAILED},      {v1::MOVE_CATCHING_UP, v1::MOVE_ABORTING},
    {v1::MOVE_PAUSED, v1::MOVE_FINAL_DELTA},      {v1::MOVE_PAUSED, v1::MOVE_CATCHING_UP},
    {v1::MOVE_PAUSED, v1::MOVE_FAILED},           {v1::MOVE_PAUSED, v1::MOVE_ABORTING},
    {v1::MOVE_FINAL_DELTA, v1::MOVE_ACTIVE},      {v1::MOVE_FINAL_DELTA, v1::MOVE_CATCHING_UP},
    {v1::MOVE_FINAL_DELTA, v1::MOVE_FAILED},      {v1::MOVE_FINAL_DELTA, v1::MOVE_ABORTING},
    {v1::MOVE_ACTIVE, v1::MOVE_RECONCILING},      {v1::MOVE_ACTIVE, v1::MOVE_CLEANUP},
    {v1::MOVE_ACTIVE, v1::MOVE_FAILED},           {v1::MOVE_RECONCILING, v1::MOVE_CLEANUP},
    {v1::MOVE_RECONCILING, v1::MOVE_FAILED},      {v1::MOVE_CLEANUP, v1::MOVE_DONE},
    {v1::MOVE_CLEANUP, v1::MOVE_FAILED},          {v1::MOVE_FAILED, v1::MOVE_ABORTING},
    {v1::MOVE_ABORTING, v1::MOVE_ABORTED},        {v1::MOVE_ABORTING, v1::MOVE_FAILED},
};

TEST(MoveMachine, EveryPairIsLegalExactlyWhenInTheTable) {
  for (auto from : kAll) {
    for (auto to : kAll) {
      EXPECT_EQ(MoveMachine::IsLegal(from, to), kLegal.count({from, to}) > 0)
          << MoveStateName(from) << " -> " << MoveStateName(to);
    }
  }
}

TEST(MoveMachine, IllegalTransitionIsAnErrorAndNotApplied) {
  ManualClock clock;
  for (auto from : kAll) {
    for (auto to : kAll) {
      if (kLegal.count({from, to})) continue;
      v1::Move m;
      m.set_id(7);
      m.set_state(from);
      m.set_state_since_ms(5);
      auto e = MoveMachine::Transition(&m, to, "x", clock.NowMs(), 0);
      ASSERT_FALSE(e.ok());
      EXPECT_EQ(e.status().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_NE(e.status().message().find(MoveStateName(from)), std::string::npos);
      EXPECT_EQ(m.state(), from);
      EXPECT_EQ(m.state_since_ms(), 5);
    }
  }
}

TEST(MoveMachine, LegalTransitionRecordsAnEventWithTimeReasonAndEpoch) {
  ManualClock clock(1'000);
  v1::Move m;
  m.set_id(3);
  m.set_plan_id(9);
  m.set_state(v1::MOVE_PREPARE);
  m.set_task_id(44);
  auto e = MoveMachine::Transition(&m, v1::MOVE_DUAL_WRITE, "fenced", clock.NowMs(), 12);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(m.state(), v1::MOVE_DUAL_WRITE);
  EXPECT_EQ(m.state_since_ms(), 1'000);
  EXPECT_EQ(m.task_id(), 0u);
  EXPECT_EQ(e->from(), "prepare");
  EXPECT_EQ(e->to(), "dual_write");
  EXPECT_EQ(e->reason(), "fenced");
  EXPECT_EQ(e->epoch(), 12u);
  EXPECT_EQ(e->plan_id(), 9u);
  EXPECT_EQ(e->move_id(), 3u);
  EXPECT_EQ(e->time_ms(), 1'000);
}

TEST(MoveMachine, AbortIsPossibleBeforeActiveOnly) {
  for (auto s : kAll) {
    v1::Move m;
    m.set_state(s);
    const bool before_active = s == v1::MOVE_PENDING || s == v1::MOVE_PREPARE ||
                               s == v1::MOVE_DUAL_WRITE || s == v1::MOVE_COPYING ||
                               s == v1::MOVE_CATCHING_UP || s == v1::MOVE_PAUSED ||
                               s == v1::MOVE_FINAL_DELTA || s == v1::MOVE_FAILED;
    EXPECT_EQ(MoveMachine::CanAbort(m), before_active) << MoveStateName(s);
    if (before_active && s != v1::MOVE_PENDING) {
      auto e = MoveMachine::Transition(&m, v1::MOVE_ABORTING, "abort", 1, 0);
      ASSERT_TRUE(e.ok()) << MoveStateName(s);
      EXPECT_EQ(MoveMachine::Transition(&m, v1::MOVE_ABORTED, "wiped", 2, 0).status(),
                absl::OkStatus());
    }
  }
  // A move that failed after its cutover is rolled back by a new move, not aborted.
  v1::Move m;
  m.set_state(v1::MOVE_CLEANUP);
  ASSERT_TRUE(MoveMachine::Transition(&m, v1::MOVE_FAILED, "x", 1, 0).ok());
  EXPECT_FALSE(MoveMachine::CanAbort(m));
}

TEST(MoveMachine, CatchUpPausesWhenSmallAndInsideWindow) {
  MigrationConfig cfg;
  cfg.catch_up_threshold = 100;
  v1::Move m;
  m.set_catch_up_since_ms(0);
  auto d = MoveMachine::AfterCatchUpPass(m, 50, 1000, cfg, true);
  EXPECT_EQ(d.next, MoveMachine::CatchUpNext::kPause);
  d = MoveMachine::AfterCatchUpPass(m, 50, 1000, cfg, false);
  EXPECT_EQ(d.next, MoveMachine::CatchUpNext::kWaitForWindow);
  EXPECT_NE(d.message.find("window"), std::string::npos);
  d = MoveMachine::AfterCatchUpPass(m, 500, 1000, cfg, true);
  EXPECT_EQ(d.next, MoveMachine::CatchUpNext::kAnotherPass);
  EXPECT_TRUE(d.message.empty());
}

TEST(MoveMachine, CatchUpNotConvergingAfterCatchUpMaxSaysSoAndStays) {
  ManualClock clock(10'000'000);
  MigrationConfig cfg;
  cfg.catch_up_threshold = 100;
  cfg.catch_up_max = absl::Minutes(1);
  v1::Move m;
  m.set_state(v1::MOVE_COPYING);
  ASSERT_TRUE(MoveMachine::Transition(&m, v1::MOVE_CATCHING_UP, "x", clock.NowMs(), 0).ok());
  clock.Advance(59'000);
  EXPECT_TRUE(MoveMachine::AfterCatchUpPass(m, 5000, clock.NowMs(), cfg, true).message.empty());
  clock.Advance(2'000);
  auto d = MoveMachine::AfterCatchUpPass(m, 5000, clock.NowMs(), cfg, true);
  EXPECT_EQ(d.next, MoveMachine::CatchUpNext::kAnotherPass);
  EXPECT_NE(d.message.find("not converging"), std::string::npos);
  EXPECT_EQ(m.state(), v1::MOVE_CATCHING_UP);
}

TEST(MoveMachine, StallAndDrainTimers) {
  ManualClock clock(5'000'000);
  MigrationConfig cfg;
  cfg.drain_timeout = absl::Milliseconds(500);
  cfg.max_write_stall = absl::Seconds(2);
  cfg.max_stall_retries = 2;
  v1::Move m;
  m.set_paused_at_ms(clock.NowMs());
  EXPECT_FALSE(MoveMachine::DrainTimedOut(m, clock.NowMs(), cfg));
  clock.Advance(500);
  EXPECT_TRUE(MoveMachine::DrainTimedOut(m, clock.NowMs(), cfg));
  EXPECT_FALSE(MoveMachine::StallExceeded(m, clock.NowMs(), cfg));
  clock.Advance(1'501);
  EXPECT_TRUE(MoveMachine::StallExceeded(m, clock.NowMs(), cfg));
  EXPECT_TRUE(MoveMachine::MayRetryAfterStall(m, cfg));
  m.set_stall_retries(2);
  EXPECT_FALSE(MoveMachine::MayRetryAfterStall(m, cfg));
}

// The runner wakes at the instant each timer fires: at it, DrainTimedOut and
// StallExceeded turn true, and a moment before they are still false.
TEST(MoveMachine, NextCutoverDeadlineIsWhenATimerFires) {
  MigrationConfig cfg;
  cfg.drain_timeout = absl::Milliseconds(20);
  cfg.max_write_stall = absl::Seconds(2);
  const int64_t paused = 5'000'000;
  v1::Move m;
  m.set_paused_at_ms(paused);
  int64_t next = MoveMachine::NextCutoverDeadlineMs(paused, /*draining=*/true, paused + 3, cfg);
  EXPECT_EQ(next, paused + 20);
  EXPECT_FALSE(MoveMachine::DrainTimedOut(m, next - 1, cfg));
  EXPECT_TRUE(MoveMachine::DrainTimedOut(m, next, cfg));
  // Past the drain (or once fenced), the stall limit is next.
  next = MoveMachine::NextCutoverDeadlineMs(paused, /*draining=*/true, paused + 20, cfg);
  EXPECT_EQ(next, MoveMachine::NextCutoverDeadlineMs(paused, /*draining=*/false, paused + 3, cfg));
  EXPECT_FALSE(MoveMachine::StallExceeded(m, next - 1, cfg));
  EXPECT_TRUE(MoveMachine::StallExceeded(m, next, cfg));
  // Nothing ahead: past both, or not paused.
  EXPECT_EQ(MoveMachine::NextCutoverDeadlineMs(paused, true, next, cfg), 0);
  EXPECT_EQ(MoveMachine::NextCutoverDeadlineMs(0, true, paused, cfg), 0);
}

TEST(MoveMachine, ACutoverStartsOnlyWhileItsNodesHaveRoom) {
  v1::Move m;
  m.add_old_owners("r0");
  m.add_new_owners("r9");
  m.add_sources("s1");  // another group's owner (add-group, restore)
  EXPECT_EQ(MoveMachine::CutoverNodes(m), (std::set<std::string>{"r0", "r9", "s1"}));
  std::map<std::string, uint64_t> busy{{"r5", 3}};
  EXPECT_TRUE(MoveMachine::MayStartCutover(m, busy, 1));
  for (const char* n : {"r0", "r9", "s1"}) {
    std::map<std::string, uint64_t> one = busy;
    one[n] = 1;
    EXPECT_FALSE(MoveMachine::MayStartCutover(m, one, 1)) << n;
    EXPECT_TRUE(MoveMachine::MayStartCutover(m, one, 2)) << n;
    EXPECT_TRUE(MoveMachine::MayStartCutover(m, one, 0)) << n << ": 0 is no limit";
  }
}

TEST(MoveMachine, CleanupWaitsForRetentionAndOneLeaseTtl) {
  ManualClock clock(1'000'000);
  MigrationConfig cfg;
  cfg.retain_moved_shard = absl::Seconds(30);
  v1::Move m;
  m.set_state(v1::MOVE_ACTIVE);
  ASSERT_TRUE(MoveMachine::Transition(&m, v1::MOVE_CLEANUP, "acked", clock.NowMs(), 0).ok());
  clock.Advance(10'000);
  EXPECT_FALSE(MoveMachine::CleanupDue(m, clock.NowMs(), cfg, absl::Seconds(10)));
  clock.Advance(20'000);
  EXPECT_TRUE(MoveMachine::CleanupDue(m, clock.NowMs(), cfg, absl::Seconds(10)));
  cfg.retain_moved_shard = absl::ZeroDuration();
  EXPECT_FALSE(MoveMachine::CleanupDue(m, clock.NowMs(), cfg, absl::Seconds(60)));
}

}  // namespace
}  // namespace miroir::coordinator
