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

  // Finishes every catch-up round task (node-batched RESHARD_DELTA) not yet
  // finished as the worker reports it: per listed shard, W = `seq` at
  // incarnation i0 and `documents` copied.
  void FinishDeltas(uint64_t documents = 0, uint64_t seq = 7) {
    for (TaskRecord* t : Tasks(v1::TASK_RESHARD_DELTA)) {
      if (t->status != TaskRecord::Status::kPending) continue;
      t->status = TaskRecord::Status::kDone;
      ASSERT_EQ(t->task.sources_size(), 1) << "one node per catch-up task";
      for (const auto& b : t->task.node_shards()) {
        auto* r = t->result.add_node_shards();
        r->set_shard(b.shard());
        *r->mutable_watermark() = Mark(t->task.sources(0), "i0", seq);
        r->set_documents(documents);
      }
    }
  }

  // Finishes every (node-batched) FENCE task as the worker reports it: F = `seq`
  // of every listed shard on the task's node; `incarnation` of each node.
  void FinishFences(const std::map<std::string, std::string>& incarnation, uint64_t seq = 9) {
    for (TaskRecord* t : Tasks(v1::TASK_FENCE)) {
      t->status = TaskRecord::Status::kDone;
      ASSERT_EQ(t->task.targets_size(), 1) << "one node per FENCE task";
      const std::string& n = t->task.targets(0);
      for (const auto& b : t->task.node_shards()) {
        auto* r = t->result.add_node_shards();
        r->set_shard(b.shard());
        *r->mutable_watermark() = Mark(n, incarnation.at(n), seq);
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
    FinishDeltas();
  }

  // The swap's writes paused at the clock's time (verify off).
  void ToSwapPaused() {
    cfg_.resharding.verify_before_swap = false;
    ToConvergedCatchUp();
    Step();
    ASSERT_EQ(rec().state(), v1::RESHARD_SWAP_PAUSED);
  }

  // The swap paused, its pause acked, every live owner fenced at F = 9 (W is 7):
  // the final deltas issued.
  void ToSwapFenced() {
    ToSwapPaused();
    acked_.insert(rec().wait_epoch());
    Step();
    FinishFences({{"r0", "i0"}, {"r1", "i0"}});
    Step();
    ASSERT_EQ(rec().state(), v1::RESHARD_SWAP_FENCED);
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
  FinishCopies(v1::TASK_RESHARD_BACKFILL);
  for (TaskRecord* t : Tasks(v1::TASK_RESHARD_BACKFILL)) t->result.set_documents(30);
  StepOutput out = Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_EQ(rec().documents_backfilled(), 60u);
  EXPECT_EQ(out.documents_backfilled, 60u) << "the counter the runner bumps";
  // The first catch-up round: one task per source node, each from the W its
  // backfill reported.
  auto deltas = Tasks(v1::TASK_RESHARD_DELTA);
  ASSERT_EQ(deltas.size(), 2u);
  for (TaskRecord* t : deltas) {
    ASSERT_EQ(t->task.node_shards_size(), 1);
    EXPECT_EQ(t->task.node_shards(0).from().node(), t->task.sources(0));
    EXPECT_EQ(t->task.node_shards(0).from().seq(), 7u);
    EXPECT_TRUE(t->task.node_shards(0).upto().node().empty()) << "a pass, not a final delta";
  }
}

TEST_F(ReshardStepperTest, ACopiedShardWithoutAWIsCopiedAgainRatherThanSkipped) {
  ToBackfill();
  FinishAll(v1::TASK_RESHARD_BACKFILL, {});  // no watermarks reported
  Step();
  ASSERT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_TRUE(Tasks(v1::TASK_RESHARD_DELTA).empty());
  for (const auto& sh : rec().shards()) EXPECT_FALSE(sh.copied()) << "shard " << sh.shard();
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
  // Every round copies 50 documents per shard in 5 s: above the threshold (10),
  // and its final delta would take 5 s, above half of max_write_stall, so the
  // catch-up goes round after round.
  auto busy_round = [this] {
    clock_.Advance(5000);
    FinishDeltas(50);
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

// Issue 19 item 5: above catch_up_threshold, a catch-up whose rounds copy fast
// enough converges (the final delta fits in half of max_write_stall); one that
// does not goes on, and past catch_up_max says "not converging" and keeps going.
TEST_F(ReshardStepperTest, BusyRoundsConvergeByTheEstimatedFinalDeltaNotTheCount) {
  cfg_.resharding.verify_before_swap = false;
  cfg_.migration.catch_up_max = absl::Seconds(20);
  ToBackfill();
  FinishCopies(v1::TASK_RESHARD_BACKFILL);
  Step();
  ASSERT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  auto round = [this](int64_t ms, uint64_t docs_per_shard) {
    clock_.Advance(ms);
    FinishDeltas(docs_per_shard);
    Step();
  };
  // 2 × 400 documents in 8 s: 100 docs/s, the final delta ~8 s: not yet.
  round(8000, 400);
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_EQ(rec().copy_rate_docs_per_s(), 100u);
  EXPECT_EQ(rec().estimated_final_delta_ms(), 8000u);
  EXPECT_FALSE(rec().not_converging());
  EXPECT_EQ(rec().message().rfind("catch-up round 1 copied 800 documents in 8000 ms", 0), 0u)
      << rec().message();
  // Another 8 s: 16 s in catching_up, then 24 s: past catch_up_max (20 s).
  round(8000, 400);
  EXPECT_FALSE(rec().not_converging());
  round(8000, 400);
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP) << "it goes on: the operator decides";
  EXPECT_TRUE(rec().not_converging());
  EXPECT_EQ(rec().message().rfind("not converging after 20s: ", 0), 0u) << rec().message();
  // Said once, as an event `reshard status` and `reshard watch` print.
  ASSERT_EQ(change_.events.size(), 1u);
  EXPECT_EQ(change_.events[0].from(), "catching_up");
  EXPECT_EQ(change_.events[0].to(), "catching_up");
  EXPECT_EQ(change_.events[0].reason(), rec().message());
  round(8000, 400);
  EXPECT_TRUE(rec().not_converging());
  EXPECT_TRUE(change_.events.empty()) << "not again on every round";
  // The copy speeds up: 2 × 400 documents in 200 ms: 4,000 docs/s now, 2,050
  // smoothed; the final delta ~391 ms: converged, above the threshold of 10.
  round(200, 400);
  EXPECT_EQ(rec().state(), v1::RESHARD_SWAP_PAUSED);
  EXPECT_EQ(rec().remaining(), 800u);
  EXPECT_FALSE(rec().not_converging());
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
  FinishDeltas();
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_TRUE(change_.events.empty());
  // Forced: the next converged round verifies, then swaps.
  rec().set_force_cutover(true);
  FinishDeltas();
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
  // Every old shard fenced at the fence epoch, every new shard's position read:
  // one task per node and generation (2 nodes: 4 tasks for 2 + 4 shards), each
  // listing that node's shards.
  auto fences = Tasks(v1::TASK_FENCE);
  ASSERT_EQ(fences.size(), 4u);
  std::multiset<uint32_t> live, positions;
  std::set<std::pair<uint64_t, std::string>> node_gen;
  for (TaskRecord* t : fences) {
    ASSERT_EQ(t->task.targets_size(), 1);
    EXPECT_TRUE(node_gen.insert({t->task.generation(), t->task.targets(0)}).second);
    const bool is_live = t->task.generation() == kOld;
    EXPECT_EQ(t->task.epoch(), is_live ? rec().fence_epoch() : 0u);
    for (const auto& b : t->task.node_shards()) {
      const auto& route = s_.generations[t->task.generation()].routes(static_cast<int>(b.shard()));
      EXPECT_EQ(route.owners(0).nodes(0), t->task.targets(0)) << "a shard on its owner's task";
      (is_live ? live : positions).insert(b.shard());
    }
  }
  EXPECT_EQ(live, (std::multiset<uint32_t>{0, 1}));
  EXPECT_EQ(positions, (std::multiset<uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(rec().node_tasks_size(), 4);
}

TEST_F(ReshardStepperTest, FenceResultsLandPerShardAndAnUnreachableOwnerLeavesPositionsUnknown) {
  ToSwapPaused();
  acked_.insert(rec().wait_epoch());
  Step();
  ASSERT_EQ(rec().step(), v1::RESHARD_STEP_FENCING);
  // r1 does not answer its position read of the new generation.
  for (TaskRecord* t : Tasks(v1::TASK_FENCE)) {
    const std::string n = t->task.targets(0);
    t->status = TaskRecord::Status::kDone;
    if (t->task.generation() == kNew && n == "r1") {
      t->result.add_unreachable(n);
      continue;
    }
    for (const auto& b : t->task.node_shards()) {
      auto* r = t->result.add_node_shards();
      r->set_shard(b.shard());
      *r->mutable_watermark() = Mark(n, "i0", 20 + b.shard());
    }
  }
  Step();
  ASSERT_EQ(rec().state(), v1::RESHARD_SWAP_FENCED);
  for (const auto& sh : rec().shards()) {
    ASSERT_EQ(sh.fences_size(), 1);
    EXPECT_EQ(sh.fences(0).seq(), 20 + sh.shard()) << "shard " << sh.shard();
  }
  ASSERT_EQ(rec().dst_positions_size(), 4);
  for (const auto& p : rec().dst_positions()) {
    const std::string owner =
        s_.generations[kNew].routes(static_cast<int>(p.shard())).owners(0).nodes(0);
    if (owner == "r1") {
      EXPECT_EQ(p.watermarks_size(), 0);
      ASSERT_EQ(p.sources_size(), 1) << "position unknown: the whole shard is copied on rollback";
      EXPECT_EQ(p.sources(0), "r1");
    } else {
      ASSERT_EQ(p.watermarks_size(), 1);
      EXPECT_EQ(p.watermarks(0).seq(), 20 + p.shard());
    }
  }
  EXPECT_EQ(rec().node_tasks_size(), 2) << "the fences dropped, the final deltas issued";
}

TEST_F(ReshardStepperTest, ASwapRecordedWithPerShardFenceTasksFencesAgainPerNode) {
  ToSwapPaused();
  acked_.insert(rec().wait_epoch());
  Step();
  ASSERT_EQ(rec().step(), v1::RESHARD_STEP_FENCING);
  // As an older coordinator left it: one FENCE task per shard, no node tasks.
  std::vector<uint64_t> old_ids;
  for (const auto& nt : rec().node_tasks()) old_ids.push_back(nt.task_id());
  rec().clear_node_tasks();
  rec().mutable_shards(0)->set_task_id(old_ids[0]);
  rec().mutable_shards(1)->set_task_id(old_ids[1]);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_SWAP_PAUSED) << "not 'every shard short of a fence'";
  EXPECT_EQ(rec().node_tasks_size(), 4);
  EXPECT_EQ(s_.tasks.count(old_ids[0]), 0u) << "the per-shard task is dropped";
  EXPECT_EQ(rec().shards(0).task_id(), 0u);
  FinishFences({{"r0", "i0"}, {"r1", "i0"}});
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_SWAP_FENCED);
}

TEST_F(ReshardStepperTest, FencedSourcesStartTheFinalDelta) {
  ToSwapPaused();
  acked_.insert(rec().wait_epoch());
  Step();
  ASSERT_EQ(rec().step(), v1::RESHARD_STEP_FENCING);
  FinishFences({{"r0", "i0"}, {"r1", "i0"}});
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_SWAP_FENCED);
  // One final delta per source node, (W, F] of each shard it sources.
  auto deltas = Tasks(v1::TASK_RESHARD_DELTA);
  ASSERT_EQ(deltas.size(), 2u);
  for (TaskRecord* t : deltas) {
    EXPECT_EQ(t->task.epoch(), rec().fence_epoch());
    ASSERT_EQ(t->task.sources_size(), 1);
    ASSERT_EQ(t->task.node_shards_size(), 1);
    const auto& b = t->task.node_shards(0);
    EXPECT_EQ(b.shard(), t->task.sources(0) == "r0" ? 0u : 1u);
    EXPECT_EQ(b.from().seq(), 7u) << "W of the last catch-up pass";
    EXPECT_EQ(b.upto().seq(), 9u) << "F of the fence";
    EXPECT_EQ(b.upto().node(), t->task.sources(0));
    EXPECT_EQ(t->task.target_route().generation(), kNew);
  }
}

TEST_F(ReshardStepperTest, SourcesThatDidNotMoveSinceTheLastPassNeedNoFinalDelta) {
  ToSwapPaused();
  acked_.insert(rec().wait_epoch());
  Step();
  FinishFences({{"r0", "i0"}, {"r1", "i0"}}, /*seq=*/7);  // F = W: nothing written since
  clock_.Advance(30);
  Step();
  EXPECT_TRUE(Tasks(v1::TASK_RESHARD_DELTA).empty());
  EXPECT_EQ(rec().state(), v1::RESHARD_RETENTION) << "fenced, nothing to copy, flipped";
  EXPECT_EQ(rec().stall_ms(), 30u);
}

TEST_F(ReshardStepperTest, FinalDeltaCountsWhatEachShardCopied) {
  ToSwapFenced();
  const uint64_t before = rec().documents_backfilled();
  for (TaskRecord* t : Tasks(v1::TASK_RESHARD_DELTA)) {
    t->status = TaskRecord::Status::kDone;
    for (const auto& b : t->task.node_shards()) {
      auto* r = t->result.add_node_shards();
      r->set_shard(b.shard());
      *r->mutable_watermark() = b.upto();
      r->set_documents(b.shard() == 0 ? 3 : 5);
    }
  }
  Step();
  EXPECT_EQ(rec().documents_backfilled(), before + 8);
  for (const auto& sh : rec().shards()) EXPECT_EQ(sh.remaining(), sh.shard() == 0 ? 3u : 5u);
  EXPECT_EQ(rec().node_tasks_size(), 0);
  EXPECT_TRUE(Tasks(v1::TASK_RESHARD_DELTA).empty()) << "consumed";
}

TEST_F(ReshardStepperTest, AFinalDeltaFailedForGoodFailsTheReshardNamingTheNode) {
  ToSwapFenced();
  for (TaskRecord* t : Tasks(v1::TASK_RESHARD_DELTA)) {
    if (t->task.sources(0) != "r1") continue;
    t->status = TaskRecord::Status::kFailed;
    t->error = "r1: fenced";
    t->failures = 100;
  }
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_FAILED);
  EXPECT_EQ(rec().message(), "TASK_RESHARD_DELTA on node r1 failed: r1: fenced");
  EXPECT_NE(s_.generations[kOld].routes(0).state(), v1::SHARD_PAUSED) << "unpaused";
  EXPECT_EQ(rec().node_tasks_size(), 0);
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
  ToSwapFenced();
  FinishAll(v1::TASK_RESHARD_DELTA, {});
  clock_.Advance(250);
  Step();  // the final deltas accounted and the flip published, in one tick
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
  // r0's catch-up task finds its sequence gone: every shard it sources (shard 0)
  // is copied again once the round ends; r1's shard goes on from its new W.
  TaskRecord* t = nullptr;
  for (TaskRecord* x : Tasks(v1::TASK_RESHARD_DELTA)) t = x->task.sources(0) == "r0" ? x : t;
  ASSERT_NE(t, nullptr);
  t->status = TaskRecord::Status::kFailed;
  t->error = "incarnation changed: node r0 was i0, now i1";
  t->failure = v1::TASK_FAILURE_INCARNATION_CHANGED;
  Step();
  EXPECT_TRUE(rec().shards(0).copied()) << "the round is not over yet";
  FinishDeltas(0, 12);
  Step();
  EXPECT_EQ(rec().state(), v1::RESHARD_CATCHING_UP);
  EXPECT_FALSE(rec().shards(0).copied());
  Step();
  EXPECT_EQ(Tasks(v1::TASK_RESHARD_BACKFILL).size(), 1u) << "shard 0 copied again";
  ASSERT_TRUE(rec().shards(1).copied());
  ASSERT_EQ(rec().shards(1).watermarks_size(), 1);
  EXPECT_EQ(rec().shards(1).watermarks(0).seq(), 12u);
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
