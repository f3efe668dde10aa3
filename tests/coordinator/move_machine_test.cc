#include "coordinator/move_machine.h"

#include <gtest/gtest.h>

#include "common/clock.h"
#include "coordinator/cluster_state.h"
#include "tests/coordinator/test_util.h"

namespace miroir::coordinator {
namespace {

const std::vector<v1::MoveState> kAll = {
    v1::MOVE_PENDING,     v1::MOVE_PREPARE, v1::MOVE_DUAL_WRITE,  v1::MOVE_COPYING,
    v1::MOVE_CATCHING_UP, v1::MOVE_PAUSED,  v1::MOVE_FINAL_DELTA, v1::MOVE_ACTIVE,
    v1::MOVE_RECONCILING, v1::MOVE_CLEANUP, v1::MOVE_DONE,        v1::MOVE_FAILED,
    v1::MOVE_ABORTING,    v1::MOVE_ABORTED};

// The last four: a joining node changed incarnation — before active back to
// prepare, after active a reconciliation before cleanup deletes.
const std::set<std::pair<v1::MoveState, v1::MoveState>> kLegal = {
    {v1::MOVE_PENDING, v1::MOVE_PREPARE},     {v1::MOVE_PENDING, v1::MOVE_ABORTED},
    {v1::MOVE_PREPARE, v1::MOVE_DUAL_WRITE},  {v1::MOVE_PREPARE, v1::MOVE_FAILED},
    {v1::MOVE_PREPARE, v1::MOVE_ABORTING},    {v1::MOVE_DUAL_WRITE, v1::MOVE_COPYING},
    {v1::MOVE_DUAL_WRITE, v1::MOVE_FAILED},   {v1::MOVE_DUAL_WRITE, v1::MOVE_ABORTING},
    {v1::MOVE_COPYING, v1::MOVE_CATCHING_UP}, {v1::MOVE_COPYING, v1::MOVE_ACTIVE},
    {v1::MOVE_COPYING, v1::MOVE_FAILED},      {v1::MOVE_COPYING, v1::MOVE_ABORTING},
    {v1::MOVE_CATCHING_UP, v1::MOVE_PAUSED},  {v1::MOVE_CATCHING_UP, v1::MOVE_COPYING},
    {v1::MOVE_CATCHING_UP, v1::MOVE_FAILED},  {v1::MOVE_CATCHING_UP, v1::MOVE_ABORTING},
    {v1::MOVE_PAUSED, v1::MOVE_FINAL_DELTA},  {v1::MOVE_PAUSED, v1::MOVE_CATCHING_UP},
    {v1::MOVE_PAUSED, v1::MOVE_FAILED},       {v1::MOVE_PAUSED, v1::MOVE_ABORTING},
    {v1::MOVE_FINAL_DELTA, v1::MOVE_ACTIVE},  {v1::MOVE_FINAL_DELTA, v1::MOVE_CATCHING_UP},
    {v1::MOVE_FINAL_DELTA, v1::MOVE_FAILED},  {v1::MOVE_FINAL_DELTA, v1::MOVE_ABORTING},
    {v1::MOVE_ACTIVE, v1::MOVE_RECONCILING},  {v1::MOVE_ACTIVE, v1::MOVE_CLEANUP},
    {v1::MOVE_ACTIVE, v1::MOVE_FAILED},       {v1::MOVE_RECONCILING, v1::MOVE_CLEANUP},
    {v1::MOVE_RECONCILING, v1::MOVE_FAILED},  {v1::MOVE_CLEANUP, v1::MOVE_DONE},
    {v1::MOVE_CLEANUP, v1::MOVE_FAILED},      {v1::MOVE_FAILED, v1::MOVE_ABORTING},
    {v1::MOVE_ABORTING, v1::MOVE_ABORTED},    {v1::MOVE_ABORTING, v1::MOVE_FAILED},
    {v1::MOVE_COPYING, v1::MOVE_PREPARE},     {v1::MOVE_PAUSED, v1::MOVE_PREPARE},
    {v1::MOVE_FINAL_DELTA, v1::MOVE_PREPARE}, {v1::MOVE_CLEANUP, v1::MOVE_RECONCILING},
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

TEST(MoveMachine, AForcedCutoverPausesWhateverIsLeftAndOutsideTheWindowOnce) {
  MigrationConfig cfg;
  cfg.catch_up_threshold = 100;
  v1::Move m;
  m.set_state(v1::MOVE_COPYING);
  ASSERT_TRUE(MoveMachine::Transition(&m, v1::MOVE_CATCHING_UP, "x", 1, 0).ok());
  EXPECT_EQ(MoveMachine::AfterCatchUpPass(m, 50'000, 1000, cfg, false).next,
            MoveMachine::CatchUpNext::kAnotherPass);
  m.set_force_cutover(true);
  auto d = MoveMachine::AfterCatchUpPass(m, 50'000, 1000, cfg, false);
  EXPECT_EQ(d.next, MoveMachine::CatchUpNext::kPause);
  EXPECT_NE(d.message.find("forced"), std::string::npos) << d.message;
  // Leaving catching_up spends the force: a stall retry back in catching_up
  // waits for convergence again (max_write_stall still bounds every cutover).
  ASSERT_TRUE(MoveMachine::Transition(&m, v1::MOVE_PAUSED, "forced", 2, 7).ok());
  EXPECT_FALSE(m.force_cutover());
  ASSERT_TRUE(MoveMachine::Transition(&m, v1::MOVE_CATCHING_UP, "stall", 3, 8).ok());
  EXPECT_EQ(MoveMachine::AfterCatchUpPass(m, 50'000, 1000, cfg, true).next,
            MoveMachine::CatchUpNext::kAnotherPass);
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

using testing::Mark;

google::protobuf::RepeatedPtrField<v1::Watermark> Marks(std::vector<v1::Watermark> marks) {
  google::protobuf::RepeatedPtrField<v1::Watermark> out;
  for (auto& m : marks) *out.Add() = std::move(m);
  return out;
}

v1::Move JoiningMove(v1::MoveState state) {
  v1::Move m;
  m.set_id(3);
  m.set_state(state);
  *m.add_joining() = Mark("r3", "a");
  *m.add_joining() = Mark("r4", "b");
  return m;
}

TEST(MoveMachine, JoiningNodesWithTheirPrepareIncarnationAreNoChange) {
  for (auto state : {v1::MOVE_COPYING, v1::MOVE_PAUSED, v1::MOVE_FINAL_DELTA, v1::MOVE_CLEANUP}) {
    const v1::Move m = JoiningMove(state);
    // A fence reply lists other nodes too (the old owners), and may miss one.
    auto c = MoveMachine::CheckJoining(m, Marks({Mark("r0", "z"), Mark("r3", "a")}));
    EXPECT_TRUE(c.changed.empty()) << c.reason;
    EXPECT_EQ(c.next, v1::MOVE_STATE_UNSPECIFIED);
  }
  EXPECT_TRUE(MoveMachine::CheckJoining(JoiningMove(v1::MOVE_PAUSED), Marks({})).changed.empty());
  // A move prepared before incarnations were recorded judges nothing.
  v1::Move old;
  old.set_state(v1::MOVE_FINAL_DELTA);
  EXPECT_TRUE(MoveMachine::CheckJoining(old, Marks({Mark("r3", "x")})).changed.empty());
}

TEST(MoveMachine, AJoiningNodeWipedBeforeActiveSendsTheMoveBackToPrepare) {
  for (auto state : {v1::MOVE_COPYING, v1::MOVE_PAUSED, v1::MOVE_FINAL_DELTA}) {
    auto c =
        MoveMachine::CheckJoining(JoiningMove(state), Marks({Mark("r3", "a"), Mark("r4", "c")}));
    EXPECT_EQ(c.changed, std::vector<std::string>{"r4"});
    EXPECT_EQ(c.next, v1::MOVE_PREPARE) << MoveStateName(state);
    EXPECT_NE(c.reason.find("joining node r4 changed incarnation b -> c"), std::string::npos)
        << c.reason;
    EXPECT_TRUE(MoveMachine::IsLegal(state, c.next));
  }
}

TEST(MoveMachine, AJoiningNodeWipedAfterActiveIsReconciledIntoBeforeAnyDelete) {
  auto c = MoveMachine::CheckJoining(JoiningMove(v1::MOVE_CLEANUP),
                                     Marks({Mark("r3", "new"), Mark("r4", "b")}));
  EXPECT_EQ(c.changed, std::vector<std::string>{"r3"});
  EXPECT_EQ(c.next, v1::MOVE_RECONCILING);
  EXPECT_TRUE(MoveMachine::IsLegal(v1::MOVE_CLEANUP, c.next));
  // What to record: the reconciliation fills the new incarnation.
  ASSERT_EQ(c.joining.size(), 2u);
  EXPECT_EQ(c.joining[0].node(), "r3");
  EXPECT_EQ(c.joining[0].incarnation(), "new");
  EXPECT_EQ(c.joining[1].incarnation(), "b");
}

TEST(MoveMachine, BackToPrepareVoidsTheCopyAndThePause) {
  v1::Move m = JoiningMove(v1::MOVE_FINAL_DELTA);
  *m.add_watermarks() = Mark("r0", "w");
  *m.add_fences() = Mark("r0", "w");
  m.set_paused_at_ms(100);
  m.set_fence_epoch(9);
  m.set_catch_up_since_ms(50);
  m.set_remaining(4);
  m.set_documents_copied(40);
  m.set_task_id(12);
  ASSERT_TRUE(MoveMachine::Transition(&m, v1::MOVE_PREPARE, "wiped", 200, 10).ok());
  EXPECT_EQ(m.state(), v1::MOVE_PREPARE);
  EXPECT_EQ(m.watermarks_size(), 0);
  EXPECT_EQ(m.fences_size(), 0);
  EXPECT_EQ(m.joining_size(), 0);
  EXPECT_EQ(m.paused_at_ms(), 0);
  EXPECT_EQ(m.fence_epoch(), 0u);
  EXPECT_EQ(m.catch_up_since_ms(), 0);
  EXPECT_EQ(m.remaining(), 0u);
  EXPECT_EQ(m.documents_copied(), 0u);
  EXPECT_EQ(m.task_id(), 0u);
  // The first prepare (from pending) keeps what the plan set.
  v1::Move fresh;
  fresh.set_state(v1::MOVE_PENDING);
  fresh.set_fence_epoch(4);
  ASSERT_TRUE(MoveMachine::Transition(&fresh, v1::MOVE_PREPARE, "start", 1, 0).ok());
  EXPECT_EQ(fresh.fence_epoch(), 4u);
}

TEST(MoveMachine, JoinedIncarnationIsTheOneEveryDoneMoveCopiedInto) {
  v1::Move a = JoiningMove(v1::MOVE_DONE), b = JoiningMove(v1::MOVE_DONE);
  v1::Move running = JoiningMove(v1::MOVE_PREPARE);
  running.mutable_joining(0)->set_incarnation("other");
  EXPECT_EQ(MoveMachine::JoinedIncarnation({&a, &b, &running}, "r3"), "a");
  EXPECT_EQ(MoveMachine::JoinedIncarnation({&a}, "r9"), "");
  // One done move copied into an incarnation the node no longer has: the marker
  // matches no report, so the node is seen changed (failed and rejoined).
  b.mutable_joining(0)->set_incarnation("a2");
  const std::string mixed = MoveMachine::JoinedIncarnation({&a, &b}, "r3");
  EXPECT_NE(mixed, "a");
  EXPECT_NE(mixed, "a2");
  EXPECT_FALSE(mixed.empty());
}

}  // namespace
}  // namespace miroir::coordinator
