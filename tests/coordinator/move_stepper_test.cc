// MoveStepper's decisions, one per transition, on a hand-built state and a manual
// clock: no coordinator, SQLite or gRPC, so each test runs in microseconds.
#include "coordinator/move_stepper.h"

#include <gtest/gtest.h>

#include <set>

#include "common/clock.h"
#include "coordinator/node_rejoin.h"
#include "tests/coordinator/test_util.h"

namespace miroir::coordinator {
namespace {

constexpr uint64_t kPlan = 100;
constexpr uint64_t kMove = 101;
constexpr uint64_t kGen = 1;

using testing::Mark;

// One shard of `products` (RF 1) in group g0 moving from r0 to r1 (add node r1).
class MoveStepperTest : public ::testing::Test {
 protected:
  MoveStepperTest() {
    cfg_ = testing::StepperConfig();
    s_.epoch = 10;
    s_.initialized = true;
    s_.next_id = 1000;
    s_.group_order = {"g0"};
    AddNode("r0", v1::NODE_ACTIVE);
    AddNode("r1", v1::NODE_JOINING);
    AddNode("r2", v1::NODE_ACTIVE);
    v1::GenerationRoute g;
    g.set_index("products");
    g.set_generation(kGen);
    g.set_shards(2);
    g.set_rf(1);
    g.set_role(v1::GENERATION_LIVE);
    for (uint32_t shard = 0; shard < 2; ++shard) {
      v1::ShardRoute* r = g.add_routes();
      r->set_shard(shard);
      r->set_sets_are_owners(true);
      auto* o = r->add_owners();
      o->set_group("g0");
      o->add_nodes("r0");
    }
    s_.generations[kGen] = g;
    v1::Plan p;
    p.set_id(kPlan);
    p.set_kind(v1::PLAN_ADD_NODE);
    p.set_state(v1::PLAN_RUNNING);
    p.set_node_id("r1");
    p.set_force(true);
    s_.plans[kPlan] = p;
    s_.moves[kMove] = NewMove(kMove, 0, v1::MOVE_PENDING);
    in_.acks_ready = true;
    in_.all_live_acked = [this](uint64_t e) { return acked_.count(e) > 0; };
  }

  void AddNode(const std::string& id, v1::NodeStatus st) {
    v1::Node n;
    n.set_id(id);
    n.set_group("g0");
    n.set_status(st);
    s_.nodes[id] = n;
  }

  v1::Move NewMove(uint64_t id, uint32_t shard, v1::MoveState st) {
    v1::Move m;
    m.set_id(id);
    m.set_plan_id(kPlan);
    m.set_index("products");
    m.set_generation(kGen);
    m.set_shard(shard);
    m.set_group("g0");
    m.add_old_owners("r0");
    m.add_new_owners("r1");
    m.add_sources("r0");
    m.set_state(st);
    m.set_state_since_ms(clock_.NowMs());
    return m;
  }

  v1::Move& move() { return s_.moves[kMove]; }

  // One step at the clock's time; the change is applied as the runner commits it.
  StepOutput Step() {
    change_ = Change();
    in_.now_ms = clock_.NowMs();
    StepOutput out = MoveStepper(cfg_).Step(s_, in_, &change_);
    ApplyChange(change_, change_.bump_epoch ? s_.epoch + 1 : s_.epoch, &s_);
    return out;
  }

  // Gives the move a task of `kind` that finished with `result`.
  TaskRecord& GiveTask(v1::TaskKind kind, TaskRecord::Status st,
                       const v1::TaskResult& result = {}) {
    const uint64_t id = s_.next_id++;
    TaskRecord& t = s_.tasks[id];
    t.task.set_id(id);
    t.task.set_kind(kind);
    t.task.set_move_id(kMove);
    t.status = st;
    t.result = result;
    move().set_task_id(id);
    return t;
  }

  const v1::Task* TaskOfMove() const {
    auto it = s_.tasks.find(s_.moves.at(kMove).task_id());
    return it == s_.tasks.end() ? nullptr : &it->second.task;
  }

  // The move's transitions in this step, as "from->to".
  std::vector<std::string> Transitions() const {
    std::vector<std::string> out;
    for (const auto& e : change_.events) {
      if (e.move_id() == kMove) out.push_back(e.from() + "->" + e.to());
    }
    return out;
  }

  // A cutover under way: paused at the clock's time with epoch 11 published.
  void Paused() {
    move().set_state(v1::MOVE_PAUSED);
    move().set_paused_at_ms(clock_.NowMs());
    move().set_fence_epoch(11);
    move().set_wait_epoch(11);
    *move().add_watermarks() = Mark("r0", "i0", 40);
  }

  CoordinatorConfig cfg_;
  ClusterState s_;
  Change change_;
  StepInput in_;
  std::set<uint64_t> acked_;
  ManualClock clock_;
};

TEST_F(MoveStepperTest, PendingMovePreparesWhenItsPlanRuns) {
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_PREPARE);
  ASSERT_GE(Transitions().size(), 1u);
  EXPECT_EQ(Transitions()[0], "pending->prepare");
}

TEST_F(MoveStepperTest, PrepareFencesAndWipesTheJoiningNodesAtThePublishedEpoch) {
  Step();  // pending -> prepare, and prepare's entry action in the same tick
  const v1::Task* t = TaskOfMove();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), v1::TASK_PREPARE);
  EXPECT_EQ(std::vector<std::string>(t->targets().begin(), t->targets().end()),
            std::vector<std::string>{"r1"});
  EXPECT_EQ(move().fence_epoch(), 10u);
  EXPECT_FALSE(change_.bump_epoch);
}

TEST_F(MoveStepperTest, PreparedJoiningIncarnationsAreRecordedAndDualWriteIsPublished) {
  move().set_state(v1::MOVE_PREPARE);
  v1::TaskResult r;
  *r.add_watermarks() = Mark("r1", "j1");
  *r.add_watermarks() = Mark("r9", "x");  // not joining: not recorded
  GiveTask(v1::TASK_PREPARE, TaskRecord::Status::kDone, r);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_DUAL_WRITE);
  EXPECT_TRUE(change_.bump_epoch);
  EXPECT_EQ(move().wait_epoch(), 11u);
  ASSERT_EQ(move().joining_size(), 1);
  EXPECT_EQ(move().joining(0).node(), "r1");
  EXPECT_EQ(move().joining(0).incarnation(), "j1");
  // The shard's route now writes to O ∪ N.
  ASSERT_TRUE(change_.routes.count({kGen, 0}));
  EXPECT_EQ(change_.routes.at({kGen, 0}).state(), v1::SHARD_DUAL_WRITE);
}

TEST_F(MoveStepperTest, WaitsForAcksBeforeCopying) {
  move().set_state(v1::MOVE_DUAL_WRITE);
  move().set_wait_epoch(11);
  in_.acks_ready = false;
  acked_.insert(11);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_DUAL_WRITE) << "acks before acks_ready are not trusted";
  in_.acks_ready = true;
  acked_.clear();
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_DUAL_WRITE) << "epoch 11 not acked yet";
  acked_.insert(11);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_COPYING);
  const v1::Task* t = TaskOfMove();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), v1::TASK_BACKFILL);
  EXPECT_EQ(t->sources(0), "r0");
  EXPECT_EQ(t->targets(0), "r1");
}

TEST_F(MoveStepperTest, BackfillDoneStartsCatchingUpFromItsWatermarks) {
  move().set_state(v1::MOVE_COPYING);
  v1::TaskResult r;
  *r.add_watermarks() = Mark("r0", "i0", 17);
  r.set_documents(250);
  GiveTask(v1::TASK_BACKFILL, TaskRecord::Status::kDone, r);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_CATCHING_UP);
  EXPECT_EQ(move().documents_copied(), 250u);
  const v1::Task* t = TaskOfMove();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), v1::TASK_CATCH_UP);
  ASSERT_EQ(t->checkpoint().watermarks_size(), 1);
  EXPECT_EQ(t->checkpoint().watermarks(0).seq(), 17u);
}

TEST_F(MoveStepperTest, RefusesActivationWhenDeltaSkippedAndAntiEntropyTurnedOff) {
  s_.plans[kPlan].set_skip_delta_pass(true);
  cfg_.anti_entropy.enabled = false;
  move().set_state(v1::MOVE_COPYING);
  GiveTask(v1::TASK_BACKFILL, TaskRecord::Status::kDone);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_FAILED);
  EXPECT_NE(move().message().find("anti"), std::string::npos) << move().message();
}

TEST_F(MoveStepperTest, SkippedDeltaActivatesAfterBackfillWhenAntiEntropyIsOn) {
  s_.plans[kPlan].set_skip_delta_pass(true);
  cfg_.anti_entropy.enabled = true;
  move().set_state(v1::MOVE_COPYING);
  GiveTask(v1::TASK_BACKFILL, TaskRecord::Status::kDone);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_ACTIVE);
  EXPECT_TRUE(change_.bump_epoch);
}

TEST_F(MoveStepperTest, ConvergedCatchUpPausesWritesAtANewEpoch) {
  move().set_state(v1::MOVE_CATCHING_UP);
  v1::TaskResult r;
  r.set_remaining(3);  // <= catch_up_threshold 10
  GiveTask(v1::TASK_CATCH_UP, TaskRecord::Status::kDone, r);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_PAUSED);
  EXPECT_TRUE(change_.bump_epoch);
  EXPECT_EQ(move().paused_at_ms(), clock_.NowMs());
  EXPECT_EQ(move().fence_epoch(), 11u);
  EXPECT_EQ(change_.routes.at({kGen, 0}).state(), v1::SHARD_PAUSED);
}

TEST_F(MoveStepperTest, UnconvergedCatchUpRunsAnotherPass) {
  move().set_state(v1::MOVE_CATCHING_UP);
  v1::TaskResult r;
  r.set_remaining(500);
  TaskRecord& first = GiveTask(v1::TASK_CATCH_UP, TaskRecord::Status::kDone, r);
  const uint64_t first_id = first.task.id();
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_CATCHING_UP);
  EXPECT_EQ(move().remaining(), 500u);
  EXPECT_TRUE(change_.deleted_tasks.count(first_id));
  EXPECT_FALSE(change_.bump_epoch);
  Step();  // the next pass
  const v1::Task* t = TaskOfMove();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), v1::TASK_CATCH_UP);
}

TEST_F(MoveStepperTest, ChangedSourceIncarnationDuringCatchUpStartsTheCopyOver) {
  move().set_state(v1::MOVE_CATCHING_UP);
  *move().add_watermarks() = Mark("r0", "i0", 9);
  TaskRecord& t = GiveTask(v1::TASK_CATCH_UP, TaskRecord::Status::kFailed);
  t.error = "incarnation changed: r0";
  t.failure = v1::TASK_FAILURE_INCARNATION_CHANGED;
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_COPYING);
  EXPECT_EQ(Transitions().at(0), "catching_up->copying");
}

TEST_F(MoveStepperTest, CutoverWaitsWhileAnotherCutoverHoldsItsNodes) {
  s_.moves[kMove + 1] = NewMove(kMove + 1, 1, v1::MOVE_PAUSED);  // same nodes, other shard
  s_.moves[kMove + 1].set_paused_at_ms(clock_.NowMs());
  move().set_state(v1::MOVE_CATCHING_UP);
  v1::TaskResult r;
  r.set_remaining(0);
  GiveTask(v1::TASK_CATCH_UP, TaskRecord::Status::kDone, r);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_CATCHING_UP);
  EXPECT_NE(move().message().find("max_cutovers_per_node"), std::string::npos);
}

TEST_F(MoveStepperTest, PausedFencesOnlyOnceDrainedOrAcked) {
  Paused();
  Step();
  EXPECT_EQ(TaskOfMove(), nullptr) << "neither acked nor drain_timeout passed";
  clock_.Advance(100);  // drain_timeout
  Step();
  const v1::Task* t = TaskOfMove();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), v1::TASK_FENCE);
  EXPECT_EQ(t->epoch(), 11u);
  EXPECT_EQ(std::set<std::string>(t->targets().begin(), t->targets().end()),
            (std::set<std::string>{"r0", "r1"}));
}

TEST_F(MoveStepperTest, PausedFencesAsSoonAsEveryWorkerAcked) {
  Paused();
  acked_.insert(11);
  Step();
  ASSERT_NE(TaskOfMove(), nullptr);
  EXPECT_EQ(TaskOfMove()->kind(), v1::TASK_FENCE);
}

TEST_F(MoveStepperTest, TooFewFencedOldOwnersReturnToCatchingUp) {
  Paused();
  v1::TaskResult r;
  *r.add_watermarks() = Mark("r0", "i0-restarted", 2);  // lost its sequence since W
  *r.add_watermarks() = Mark("r1", "j1", 0);
  GiveTask(v1::TASK_FENCE, TaskRecord::Status::kDone, r);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_CATCHING_UP);
  EXPECT_EQ(move().paused_at_ms(), 0);
  EXPECT_TRUE(change_.bump_epoch) << "the unpause is published";
  EXPECT_EQ(move().message(), "only 0 of 1 old owners fenced with a current watermark");
}

TEST_F(MoveStepperTest, FencedOldOwnersStartTheFinalDeltaFromThemInTheSameTick) {
  Paused();
  v1::TaskResult r;
  *r.add_watermarks() = Mark("r0", "i0", 45);
  *r.add_watermarks() = Mark("r1", "j1", 0);
  GiveTask(v1::TASK_FENCE, TaskRecord::Status::kDone, r);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_FINAL_DELTA);
  EXPECT_EQ(Transitions().at(0), "paused->final_delta");
  EXPECT_FALSE(change_.bump_epoch);
  const v1::Task* t = TaskOfMove();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), v1::TASK_FINAL_DELTA);
  EXPECT_EQ(std::vector<std::string>(t->sources().begin(), t->sources().end()),
            std::vector<std::string>{"r0"});
  ASSERT_EQ(t->upto_size(), 2);
  EXPECT_EQ(t->epoch(), 11u);
}

TEST_F(MoveStepperTest, StallPastTheLimitUnpausesAtANewEpoch) {
  Paused();
  clock_.Advance(2000);  // exactly max_write_stall: not yet
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_PAUSED);
  clock_.Advance(1);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_CATCHING_UP);
  EXPECT_TRUE(change_.bump_epoch);
  EXPECT_EQ(move().wait_epoch(), s_.epoch);
  EXPECT_EQ(move().stall_retries(), 1u);
  EXPECT_EQ(move().paused_at_ms(), 0);
  EXPECT_NE(change_.routes.at({kGen, 0}).state(), v1::SHARD_PAUSED);
}

TEST_F(MoveStepperTest, StallPastTheLimitTooOftenFailsTheMove) {
  Paused();
  move().set_stall_retries(3);  // max_stall_retries
  clock_.Advance(2001);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_FAILED);
  EXPECT_EQ(move().message(), "write stall exceeded max_write_stall 4 times");
}

TEST_F(MoveStepperTest, FinalDeltaDoneSwitchesOwnersAtANewEpoch) {
  Paused();
  move().set_state(v1::MOVE_FINAL_DELTA);
  v1::TaskResult r;
  r.set_documents(4);
  GiveTask(v1::TASK_FINAL_DELTA, TaskRecord::Status::kDone, r);
  clock_.Advance(300);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_ACTIVE);
  EXPECT_TRUE(change_.bump_epoch);
  EXPECT_EQ(move().stall_ms(), 300u);
  const v1::ShardRoute& route = change_.routes.at({kGen, 0});
  ASSERT_EQ(route.owners_size(), 1);
  EXPECT_EQ(route.owners(0).nodes(0), "r1");
}

TEST_F(MoveStepperTest, ActiveCleansUpOnceEveryWorkerAckedTheActiveEpoch) {
  move().set_state(v1::MOVE_ACTIVE);
  move().set_wait_epoch(11);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_ACTIVE);
  acked_.insert(11);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_CLEANUP);
}

TEST_F(MoveStepperTest, ActiveReconcilesLeavingOwnersOfARemoveNodePlan) {
  s_.plans[kPlan].set_kind(v1::PLAN_REMOVE_NODE);
  s_.plans[kPlan].set_node_id("r0");
  move().set_state(v1::MOVE_ACTIVE);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_RECONCILING);
  const v1::Task* t = TaskOfMove();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), v1::TASK_RECONCILE);
  EXPECT_TRUE(t->repair());
}

TEST_F(MoveStepperTest, CleanupDeletesOnLeavingNodesOnlyAfterTheLeaseTtl) {
  move().set_state(v1::MOVE_CLEANUP);
  Step();
  EXPECT_EQ(TaskOfMove(), nullptr);
  clock_.Advance(600);  // worker_lease_ttl
  Step();
  ASSERT_NE(TaskOfMove(), nullptr);
  EXPECT_EQ(TaskOfMove()->kind(), v1::TASK_CLEANUP);
  EXPECT_EQ(TaskOfMove()->targets(0), "r0");
}

TEST_F(MoveStepperTest, LastMoveDoneEndsThePlanAndActivatesTheJoinedNode) {
  move().set_state(v1::MOVE_CLEANUP);
  GiveTask(v1::TASK_CLEANUP, TaskRecord::Status::kDone);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_DONE);
  EXPECT_EQ(s_.plans[kPlan].state(), v1::PLAN_DONE);
  EXPECT_EQ(s_.nodes["r1"].status(), v1::NODE_ACTIVE);
  EXPECT_TRUE(change_.bump_epoch);
}

TEST_F(MoveStepperTest, TaskFailedForGoodFailsTheMoveAndThePlan) {
  move().set_state(v1::MOVE_COPYING);
  TaskRecord& t = GiveTask(v1::TASK_BACKFILL, TaskRecord::Status::kFailed);
  t.error = "boom";
  t.retryable = true;
  t.failures = 2;  // within task_retries: leased again, the move waits
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_COPYING);
  s_.tasks[move().task_id()].failures = 3;
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_FAILED);
  EXPECT_EQ(move().message(), "TASK_BACKFILL failed: boom");
  EXPECT_EQ(s_.plans[kPlan].state(), v1::PLAN_FAILED);
}

TEST_F(MoveStepperTest, PlanAbortRoutesBackAndWipesThePartialCopy) {
  move().set_state(v1::MOVE_COPYING);
  s_.plans[kPlan].set_state(v1::PLAN_ABORTING);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_ABORTING);
  EXPECT_TRUE(change_.bump_epoch);
  const uint64_t back = move().wait_epoch();
  Step();
  EXPECT_EQ(TaskOfMove(), nullptr) << "waits for the acks of the way back";
  acked_.insert(back);
  Step();
  ASSERT_NE(TaskOfMove(), nullptr);
  EXPECT_EQ(TaskOfMove()->kind(), v1::TASK_CLEANUP);
  EXPECT_EQ(TaskOfMove()->targets(0), "r1");
  s_.tasks[move().task_id()].status = TaskRecord::Status::kDone;
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_ABORTED);
  EXPECT_EQ(s_.plans[kPlan].state(), v1::PLAN_ABORTED);
}

// DESIGN §6 "Abort": a restore's replacement counted toward acks, so it is
// reconciled into O once (abort_reconciled), then wiped.
TEST_F(MoveStepperTest, RestoreAbortReconcilesTheReplacementOnceThenWipesIt) {
  s_.nodes["r0"].set_status(v1::NODE_FAILED);
  s_.plans[kPlan].set_kind(v1::PLAN_RESTORE);
  move().set_state(v1::MOVE_COPYING);
  s_.plans[kPlan].set_state(v1::PLAN_ABORTING);
  Step();
  ASSERT_EQ(move().state(), v1::MOVE_ABORTING);
  acked_.insert(move().wait_epoch());
  Step();
  ASSERT_NE(TaskOfMove(), nullptr);
  EXPECT_EQ(TaskOfMove()->kind(), v1::TASK_RECONCILE);
  EXPECT_FALSE(move().abort_reconciled());
  s_.tasks[move().task_id()].status = TaskRecord::Status::kDone;
  Step();
  EXPECT_TRUE(move().abort_reconciled());
  EXPECT_EQ(move().fences_size(), 0) << "the marker no longer rides in fences";
  Step();
  ASSERT_NE(TaskOfMove(), nullptr);
  EXPECT_EQ(TaskOfMove()->kind(), v1::TASK_CLEANUP) << "reconciled once, not again";
  s_.tasks[move().task_id()].status = TaskRecord::Status::kDone;
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_ABORTED);
}

TEST_F(MoveStepperTest, PendingMoveOfAnAbortedPlanEndsAtOnceAndTheJoiningNodeIsRemoved) {
  s_.plans[kPlan].set_state(v1::PLAN_ABORTING);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_ABORTED);
  EXPECT_EQ(move().wait_epoch(), 0u) << "nothing was routed: nothing to publish for the move";
  EXPECT_EQ(s_.plans[kPlan].state(), v1::PLAN_ABORTED);
  EXPECT_EQ(s_.nodes["r1"].status(), v1::NODE_REMOVED);
}

TEST_F(MoveStepperTest, PausedPlanHoldsMovesOutsideACutover) {
  s_.plans[kPlan].set_state(v1::PLAN_PAUSED);
  move().set_state(v1::MOVE_DUAL_WRITE);
  acked_.insert(0);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_DUAL_WRITE);
  EXPECT_TRUE(change_.events.empty());
}

TEST_F(MoveStepperTest, PausedPlanStillFinishesACutoverUnderWay) {
  s_.plans[kPlan].set_state(v1::PLAN_PAUSED);
  Paused();
  clock_.Advance(2001);
  Step();
  EXPECT_EQ(move().state(), v1::MOVE_CATCHING_UP);
}

// The fences `nodes fail` leases are marked where they are made (NodeFailureFence)
// and dropped once they ran or failed for good; any other move-less fence -- a
// reshard's swap fence or position read, made by NewShardTask -- is its runner's,
// whatever record refers to it. (Before the marker, the sweep took every FENCE of
// no move, and every reshard swap stalled: its fences were gone.)
TEST_F(MoveStepperTest, DropsAFailedNodesFenceOnceRunButNotAReshardsSwapFence) {
  Change made;
  const v1::Task failed_done = NodeFailureFence(s_, &made, s_.generations[kGen], 1, "r2");
  const v1::Task failed_for_good = NodeFailureFence(s_, &made, s_.generations[kGen], 0, "r2");
  const v1::Task swap =
      NewShardTask(s_, &made, v1::TASK_FENCE, s_.generations[kGen], 1, s_.epoch + 1, {}, {"r0"}, 0);
  s_.next_id = made.next_id;
  s_.tasks[failed_done.id()].task = failed_done;
  s_.tasks[failed_done.id()].status = TaskRecord::Status::kDone;
  s_.tasks[failed_for_good.id()].task = failed_for_good;
  s_.tasks[failed_for_good.id()].status = TaskRecord::Status::kFailed;
  s_.tasks[failed_for_good.id()].failures = cfg_.migration.task_retries + 1;
  s_.tasks[swap.id()].task = swap;
  s_.tasks[swap.id()].status = TaskRecord::Status::kDone;
  Step();
  EXPECT_FALSE(s_.tasks.count(failed_done.id()));
  EXPECT_FALSE(s_.tasks.count(failed_for_good.id()));
  EXPECT_TRUE(s_.tasks.count(swap.id())) << "a reshard's fence: its stepper reads the result";
}

TEST_F(MoveStepperTest, TransitionsAreLoggedNotWrittenToAProcessLog) {
  StepOutput out = Step();
  ASSERT_FALSE(out.log.empty());
  EXPECT_EQ(out.log[0].text,
            "move 101 (plan 100, products shard 0 g0): pending -> prepare: plan started");
}

}  // namespace
}  // namespace miroir::coordinator
