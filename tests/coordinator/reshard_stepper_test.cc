// ReshardStepper's decisions on a hand-built state and a manual clock: no
// coordinator, SQLite or gRPC, so each test runs in microseconds.
#include "coordinator/reshard_stepper.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "tests/coordinator/test_util.h"

namespace miroir::coordinator {
namespace {

constexpr uint64_t kReshard = 50;
constexpr uint64_t kOld = 1;
constexpr uint64_t kNew = 5;

using testing::Mark;

// `products` (RF 1, group g0 of r0 and r1) resharded from 2 to 4 shards.
class ReshardStepperTest : public ::testing::Test {
 protected:
  ReshardStepperTest() {
    cfg_ = testing::StepperConfig();
    cfg_.resharding.backfill_concurrency = 4;
    cfg_.resharding.verify_before_swap = true;
    s_.epoch = 10;
    s_.initialized = true;
    s_.next_id = 1000;
    s_.group_order = {"g0"};
    for (const char* id : {"r0", "r1"}) {
      v1::Node n;
      n.set_id(id);
      n.set_group("g0");
      n.set_status(v1::NODE_ACTIVE);
      s_.nodes[id] = n;
    }
    v1::GenerationRoute g;
    g.set_index("products");
    g.set_generation(kOld);
    g.set_shards(2);
    g.set_rf(1);
    g.set_role(v1::GENERATION_LIVE);
    for (uint32_t shard = 0; shard < 2; ++shard) {
      v1::ShardRoute* r = g.add_routes();
      r->set_shard(shard);
      r->set_sets_are_owners(true);
      auto* o = r->add_owners();
      o->set_group("g0");
      o->add_nodes(shard == 0 ? "r0" : "r1");
    }
    s_.generations[kOld] = g;
    v1::Index ix;
    ix.set_name("products");
    ix.set_shards(2);
    ix.set_rf(1);
    ix.set_live_generation(kOld);
    v1::Generation* gen = ix.add_generations();
    gen->set_id(kOld);
    gen->set_shards(2);
    gen->set_role(v1::GENERATION_LIVE);
    s_.indexes["products"] = ix;
    v1::ReshardRecord r;
    r.set_id(kReshard);
    r.set_index("products");
    r.set_old_shards(2);
    r.set_new_shards(4);
    r.set_old_generation(kOld);
    r.set_new_generation(kNew);
    r.set_state(v1::RESHARD_SHADOW);
    r.set_failed_from(v1::RESHARD_SHADOW);
    r.set_force(true);
    s_.reshards[kReshard] = r;
    in_.acks_ready = true;
    in_.all_live_acked = [this](uint64_t e) { return acked_.count(e) > 0; };
  }

  v1::ReshardRecord& rec() { return s_.reshards[kReshard]; }

  // `HH:MM-HH:MM` UTC opening two hours after the manual clock's now.
  std::string ClosedWindow() const {
    const absl::Time start = absl::FromUnixMillis(clock_.NowMs()) + absl::Hours(2);
    return absl::StrCat(absl::FormatTime("%H:%M", start, absl::UTCTimeZone()), "-",
                        absl::FormatTime("%H:%M", start + absl::Hours(1), absl::UTCTimeZone()));
  }

  StepOutput Step() {
    change_ = Change();
    in_.now_ms = clock_.NowMs();
    StepOutput out = ReshardStepper(cfg_).Step(s_, in_, &change_);
    ApplyChange(change_, change_.bump_epoch ? s_.epoch + 1 : s_.epoch, &s_);
    return out;
  }

  // Steps from `shadow` until the backfill has started (shadow published and acked).
  void ToBackfill() {
    Step();  // shadow -> dual_write
    acked_.insert(rec().wait_epoch());
    Step();  // dual_write -> backfill
    ASSERT_EQ(rec().state(), v1::RESHARD_BACKFILL);
  }

  std::vector<TaskRecord*> Tasks(v1::TaskKind kind) {
    std::vector<TaskRecord*> out;
    for (auto& [id, t] : s_.tasks) {
      if (t.task.kind() == kind) out.push_back(&t);
    }
    return out;
  }

  // Finishes every pending task of `kind` with `result`.
  void FinishAll(v1::TaskKind kind, const v1::TaskResult& result) {
    for (TaskRecord* t : Tasks(kind)) {
      t->status = TaskRecord::Status::kDone;
      t->result = result;
    }
  }

  // Finishes every pending copy task of `kind` with a watermark per source, as a
  // worker reports it (incarnation i0).
  void FinishCopies(v1::TaskKind kind) {
    for (TaskRecord* t : Tasks(kind)) {
      t->status = TaskRecord::Status::kDone;
      for (const auto& n : t->task.sources()) *t->result.add_watermarks() = Mark(n, "i0", 7);
    }
  }

  // Finishes every FENCE task with F per target; `incarnation` of each node.
  void FinishFences(const std::map<std::string, std::string>& incarnation) {
    for (TaskRecord* t : Tasks(v1::TASK_FENCE)) {
      t->status = TaskRecord::Status::kDone;
      for (const auto& n : t->task.targets()) {
        *t->result.add_watermarks() = Mark(n, incarnation.at(n), 9);
      }
    }
  }

  // Every shard's copies done with the source's watermark at incarnation i0; the
  // next step finds the catch-up converged (0 documents).
  void ToConvergedCatchUp() {
    ToBackfill();
    FinishCopies(v1::TASK_RESHARD_BACKFILL);
    Step();  // backfill -> catching_up, first delta pass issued
    ASSERT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
    FinishCopies(v1::TASK_RESHARD_DELTA);
  }

  // The swap's writes paused at the clock's time (verify off).
  void ToSwapPaused() {
    cfg_.resharding.verify_before_swap = false;
    ToConvergedCatchUp();
    Step();
    ASSERT_EQ(rec().state(), v1::RESHARD_SWAP_PAUSED);
  }

  CoordinatorConfig cfg_;
  ClusterState s_;
  Change change_;
  StepInput in_;
  std::set<uint64_t> acked_;
  ManualClock clock_;
};

TEST_F(ReshardStepperTest, ShadowIsCreatedAndEveryWriteAlsoGoesThere) {
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_DUAL_WRITE);
  EXPECT_TRUE(change_.bump_epoch);
  EXPECT_EQ(rec().wait_epoch(), 11u);
  ASSERT_TRUE(s_.generations.count(kNew));
  EXPECT_EQ(s_.generations[kNew].role(), v1::GENERATION_SHADOW);
  EXPECT_EQ(s_.generations[kNew].routes_size(), 4);
  ASSERT_EQ(change_.events.size(), 1u);
  EXPECT_EQ(change_.events[0].from(), "shadow");
  EXPECT_EQ(change_.events[0].to(), "dual_write");
}

TEST_F(ReshardStepperTest, WaitsForAcksBeforeBackfilling) {
  Step();
  in_.acks_ready = false;
  acked_.insert(11);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_DUAL_WRITE) << "acks before acks_ready are not trusted";
  in_.acks_ready = true;
  acked_.clear();
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_DUAL_WRITE);
  acked_.insert(11);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_BACKFILL);
  EXPECT_EQ(Tasks(v1::TASK_RESHARD_BACKFILL).size(), 2u) << "one per old shard";
}

TEST_F(ReshardStepperTest, BackfillKeepsAtMostBackfillConcurrencyInFlight) {
  cfg_.resharding.backfill_concurrency = 1;
  ToBackfill();
  ASSERT_EQ(Tasks(v1::TASK_RESHARD_BACKFILL).size(), 1u);
  FinishAll(v1::TASK_RESHARD_BACKFILL, {});
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_BACKFILL);
  EXPECT_EQ(Tasks(v1::TASK_RESHARD_BACKFILL).size(), 1u) << "the first dropped, the second issued";
}

TEST_F(ReshardStepperTest, BackfillDoneStartsCatchingUpAndCountsDocuments) {
  ToBackfill();
  v1::TaskResult r;
  r.set_documents(30);
  FinishAll(v1::TASK_RESHARD_BACKFILL, r);
  StepOutput out = Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_EQ(rec().documents_backfilled(), 60u);
  EXPECT_EQ(out.documents_backfilled, 60u) << "the counter the runner bumps";
  EXPECT_EQ(Tasks(v1::TASK_RESHARD_DELTA).size(), 2u);
}

TEST_F(ReshardStepperTest, ConvergedCatchUpIsVerifiedFirst) {
  ToConvergedCatchUp();
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_VERIFY);
  EXPECT_EQ(Tasks(v1::TASK_RESHARD_VERIFY).size(), 1u);
  EXPECT_FALSE(change_.bump_epoch);
}

TEST_F(ReshardStepperTest, CleanVerifyPausesTheIndexWithTheStallDeadline) {
  ToConvergedCatchUp();
  Step();
  FinishAll(v1::TASK_RESHARD_VERIFY, {});
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_SWAP_PAUSED);
  EXPECT_TRUE(change_.bump_epoch);
  EXPECT_EQ(rec().paused_at_ms(), clock_.NowMs());
  const v1::ShardRoute& route = s_.generations[kOld].routes(0);
  EXPECT_EQ(route.state(), v1::SHARD_PAUSED);
  EXPECT_EQ(route.pause_deadline_ms(), static_cast<uint64_t>(clock_.NowMs() + 2000));
}

TEST_F(ReshardStepperTest, VerifyMismatchRunsOneMoreCatchUpPass) {
  ToConvergedCatchUp();
  Step();
  v1::TaskResult r;
  r.set_mismatches(1);
  r.add_divergent_keys("k1");
  FinishAll(v1::TASK_RESHARD_VERIFY, r);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  ASSERT_EQ(rec().divergent_keys_size(), 1);
  EXPECT_EQ(rec().divergent_keys(0), "k1");
}

TEST_F(ReshardStepperTest, ForcedCutoverSwapsAfterTheRoundInFlightAndOutsideTheWindow) {
  cfg_.resharding.verify_before_swap = false;
  rec().set_force(false);
  rec().set_schedule_window(ClosedWindow());
  ToBackfill();
  FinishCopies(v1::TASK_RESHARD_BACKFILL);
  Step();
  ASSERT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  // Every round copies 50 documents per shard: above the threshold (10), so the
  // catch-up goes round after round.
  auto busy_round = [this] {
    for (TaskRecord* t : Tasks(v1::TASK_RESHARD_DELTA)) {
      t->status = TaskRecord::Status::kDone;
      t->result.set_documents(50);
      for (const auto& n : t->task.sources()) *t->result.add_watermarks() = Mark(n, "i0", 7);
    }
    Step();
  };
  busy_round();
  busy_round();
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_EQ(rec().remaining(), 100u);
  // The operator forces it (ReshardRunner::Cutover sets the flag): the round in
  // flight is the last one, and the closed window does not hold the swap.
  rec().set_force_cutover(true);
  busy_round();
  EXPECT_EQ(rec().state(), v1::RESHARD_SWAP_PAUSED);
  EXPECT_TRUE(change_.bump_epoch);
  EXPECT_FALSE(rec().force_cutover()) << "spent once writes pause";
  ASSERT_FALSE(change_.events.empty());
  EXPECT_EQ(change_.events.back().reason(),
            "cutover forced by the operator (100 left); verify_before_swap is off");
}

TEST_F(ReshardStepperTest, WithoutAForcedCutoverAClosedWindowHoldsAConvergedCatchUp) {
  rec().set_force(false);
  rec().set_schedule_window(ClosedWindow());
  ToConvergedCatchUp();
  Step();
  // Verify waits for the window too (before: catching_up -> verify -> catching_up
  // on every converged round, an event pair every few ms while the window was closed).
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_EQ(rec().message(), "waiting for a resharding window before the swap");
  EXPECT_TRUE(Tasks(v1::TASK_RESHARD_VERIFY).empty());
  EXPECT_TRUE(change_.events.empty());
  FinishCopies(v1::TASK_RESHARD_DELTA);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_TRUE(change_.events.empty());
  // Forced: the next converged round verifies, then swaps.
  rec().set_force_cutover(true);
  FinishCopies(v1::TASK_RESHARD_DELTA);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_VERIFY);
  FinishAll(v1::TASK_RESHARD_VERIFY, {});
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_SWAP_PAUSED);
}

TEST_F(ReshardStepperTest, SwapFencesOnlyOnceDrainedOrAcked) {
  ToSwapPaused();
  Step();
  EXPECT_EQ(rec().step(), v1::RESHARD_STEP_PAUSING);
  EXPECT_TRUE(Tasks(v1::TASK_FENCE).empty());
  clock_.Advance(100);  // drain_timeout
  Step();
  EXPECT_EQ(rec().step(), v1::RESHARD_STEP_FENCING);
  // Every old shard fenced at the fence epoch, every new shard's position read.
  auto fences = Tasks(v1::TASK_FENCE);
  ASSERT_EQ(fences.size(), 6u);
  int at_fence_epoch = 0;
  for (TaskRecord* t : fences) at_fence_epoch += t->task.epoch() == rec().fence_epoch();
  EXPECT_EQ(at_fence_epoch, 2);
}

TEST_F(ReshardStepperTest, FencedSourcesStartTheFinalDelta) {
  ToSwapPaused();
  acked_.insert(rec().wait_epoch());
  Step();
  ASSERT_EQ(rec().step(), v1::RESHARD_STEP_FENCING);
  FinishFences({{"r0", "i0"}, {"r1", "i0"}});
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_SWAP_FENCED);
  auto deltas = Tasks(v1::TASK_RESHARD_DELTA);
  ASSERT_EQ(deltas.size(), 2u);
  for (TaskRecord* t : deltas) {
    EXPECT_EQ(t->task.epoch(), rec().fence_epoch());
    EXPECT_EQ(t->task.sources_size(), 1);
    EXPECT_EQ(t->task.upto_size(), 1) << "F of the shard's one owner";
  }
}

TEST_F(ReshardStepperTest, SourcesThatLostTheirSequenceSendTheSwapBackToCatchingUp) {
  ToSwapPaused();
  acked_.insert(rec().wait_epoch());
  Step();
  FinishFences({{"r0", "i1"}, {"r1", "i0"}});  // r0 restarted empty since W
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_TRUE(change_.bump_epoch) << "the unpause is published";
  EXPECT_EQ(rec().paused_at_ms(), 0);
  int recopied = 0;
  for (const auto& sh : rec().shards()) recopied += !sh.copied();
  EXPECT_EQ(recopied, 1);
}

TEST_F(ReshardStepperTest, SwapStallPastTheLimitUnpausesAtANewEpoch) {
  ToSwapPaused();
  clock_.Advance(2000);  // exactly max_write_stall: not yet (the move's boundary too)
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_SWAP_PAUSED);
  EXPECT_EQ(rec().stall_retries(), 0u);
  clock_.Advance(1);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_TRUE(change_.bump_epoch);
  EXPECT_EQ(rec().stall_retries(), 1u);
  EXPECT_EQ(rec().paused_at_ms(), 0);
  EXPECT_NE(s_.generations[kOld].routes(0).state(), v1::SHARD_PAUSED);
}

TEST_F(ReshardStepperTest, SwapStallPastTheLimitTooOftenFailsAndUnpauses) {
  ToSwapPaused();
  rec().set_stall_retries(3);
  clock_.Advance(2001);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_FAILED);
  EXPECT_NE(s_.generations[kOld].routes(0).state(), v1::SHARD_PAUSED);
  EXPECT_EQ(rec().message(), "write stall exceeded max_write_stall 4 times");
}

TEST_F(ReshardStepperTest, FinalDeltaDoneFlipsTheShadowLive) {
  ToSwapPaused();
  acked_.insert(rec().wait_epoch());
  Step();
  FinishFences({{"r0", "i0"}, {"r1", "i0"}});
  Step();
  ASSERT_EQ(rec().state(), v1::RESHARD_SWAP_FENCED);
  FinishAll(v1::TASK_RESHARD_DELTA, {});
  clock_.Advance(250);
  Step();  // the final deltas accounted
  EXPECT_EQ(rec().state(), v1::RESHARD_SWAP_FENCED);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_RETENTION);
  EXPECT_TRUE(change_.bump_epoch);
  EXPECT_EQ(s_.indexes["products"].live_generation(), kNew);
  EXPECT_EQ(s_.indexes["products"].shards(), 4u);
  EXPECT_EQ(s_.generations[kOld].role(), v1::GENERATION_RETAINED);
  EXPECT_EQ(rec().stall_ms(), 250u);
}

TEST_F(ReshardStepperTest, RetentionEndsWhenTheOperatorCompletes) {
  rec().set_state(v1::RESHARD_RETENTION);
  rec().set_swapped_at_ms(clock_.NowMs());
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_RETENTION);
  rec().set_complete_requested(true);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_CLEANUP);
  EXPECT_TRUE(change_.bump_epoch);
}

TEST_F(ReshardStepperTest, AbortBeforeTheSwapDropsTheShadow) {
  ToBackfill();
  rec().set_state(v1::RESHARD_ABORTING);
  rec().set_step(v1::RESHARD_STEP_UNROUTE);
  Step();
  EXPECT_EQ(rec().step(), v1::RESHARD_STEP_UNROUTED);
  EXPECT_TRUE(change_.bump_epoch);
  EXPECT_TRUE(Tasks(v1::TASK_RESHARD_BACKFILL).empty()) << "the copies are dropped";
}

TEST_F(ReshardStepperTest, SourceWhoseIncarnationChangedIsCopiedAgain) {
  ToBackfill();
  FinishCopies(v1::TASK_RESHARD_BACKFILL);
  Step();  // backfill -> catching_up, first delta pass issued
  ASSERT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  TaskRecord* t = Tasks(v1::TASK_RESHARD_DELTA).at(0);
  t->status = TaskRecord::Status::kFailed;
  t->error = "incarnation changed: node r0 was i0, now i1";
  t->failure = v1::TASK_FAILURE_INCARNATION_CHANGED;
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  int recopied = 0;
  for (const auto& sh : rec().shards()) recopied += !sh.copied();
  EXPECT_EQ(recopied, 1);
}

TEST_F(ReshardStepperTest, ErrorThatOnlyReadsLikeAnIncarnationChangeFailsTheReshard) {
  ToBackfill();
  FinishCopies(v1::TASK_RESHARD_BACKFILL);
  Step();
  ASSERT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  TaskRecord* t = Tasks(v1::TASK_RESHARD_DELTA).at(0);
  t->status = TaskRecord::Status::kFailed;
  t->error = "incarnation changed: node r0 was i0, now i1";  // no reason: the text decides nothing
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_FAILED);
  EXPECT_EQ(rec().failed_from(), v1::RESHARD_CATCHING_UP);
}

TEST_F(ReshardStepperTest, StallBackToCatchingUpLeavesNoSwapStep) {
  ToSwapPaused();
  EXPECT_EQ(rec().step(), v1::RESHARD_STEP_PAUSING);
  clock_.Advance(2001);
  Step();
  ASSERT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_EQ(rec().step(), v1::RESHARD_STEP_NONE);
}

}  // namespace
}  // namespace miroir::coordinator
