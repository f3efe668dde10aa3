#include "coordinator/reshard_stepper.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/route_sets.h"
#include "coordinator/cutover.h"
#include "coordinator/move_gates.h"
#include "coordinator/reshard_gates.h"
#include "coordinator/routing_tables.h"
#include "coordinator/schedule_window.h"

namespace miroir::coordinator {

namespace {

using R = v1::ReshardState;
using Strings = std::vector<std::string>;

constexpr int kMaxStepsPerTick = 4;
constexpr uint32_t kMaxVerifyRounds = 5;
constexpr uint32_t kVerifyBuckets = 256;

using cutover::WithoutFailed;

// Every owner of a shard, all groups, without failed nodes.
Strings AllOwners(const v1::ShardRoute& route, const std::set<std::string>& failed) {
  Strings out;
  for (const auto& g : route.owners()) {
    for (const auto& n : WithoutFailed(g.nodes(), failed)) out.push_back(n);
  }
  return out;
}

// RF − q + 1 owners of a shard in every group (rank order), without failed nodes.
Strings CopySources(const v1::ShardRoute& route, uint32_t rf, const std::set<std::string>& failed) {
  Strings out;
  for (const auto& g : route.owners()) {
    Strings alive = WithoutFailed(g.nodes(), failed);
    const size_t n = std::min<size_t>(MinSources(rf), alive.size());
    out.insert(out.end(), alive.begin(), alive.begin() + static_cast<long>(n));
  }
  return out;
}

// A generation's route as a task carries it: failed nodes out of the owners.
v1::GenerationRoute TaskRoute(const v1::GenerationRoute& g, const std::set<std::string>& failed) {
  v1::GenerationRoute out = g;
  for (auto& r : *out.mutable_routes()) {
    for (auto& o : *r.mutable_owners()) {
      Strings keep = WithoutFailed(o.nodes(), failed);
      o.clear_nodes();
      for (auto& n : keep) o.add_nodes(n);
    }
  }
  return out;
}

class ReshardTick : StepContext {
 public:
  ReshardTick(const ClusterState& s, Change* c, const CoordinatorConfig& cfg, const StepInput& in,
              StepOutput* out)
      : StepContext(s, c, cfg, in, out) {}

  void Run() {
    for (const auto& [id, rec] : s_.reshards) {
      if (ReshardMachine::Ended(rec) || rec.state() == v1::RESHARD_FAILED) continue;
      v1::ReshardRecord r = rec;
      for (int i = 0; i < kMaxStepsPerTick; ++i) {
        const auto before = std::make_pair(r.state(), r.step());
        const bool bumped = c_->bump_epoch;
        Step(&r);
        if (std::make_pair(r.state(), r.step()) == before || (c_->bump_epoch && !bumped) ||
            ReshardMachine::Ended(r) || r.state() == v1::RESHARD_FAILED) {
          break;
        }
      }
      if (r.SerializeAsString() != rec.SerializeAsString()) c_->reshards[id] = r;
    }
  }

 private:
  // ---- helpers over the state as this change leaves it ----
  const v1::GenerationRoute& Gen(uint64_t id) const { return s_.generations.at(id); }

  v1::Index IndexNow(const std::string& name) const {
    auto it = c_->indexes.find(name);
    return it != c_->indexes.end() ? it->second : s_.indexes.at(name);
  }

  void SetRole(const std::string& index, uint64_t gen, v1::GenerationRole role) {
    v1::Index ix = IndexNow(index);
    for (auto& g : *ix.mutable_generations()) {
      if (g.id() == gen) g.set_role(role);
    }
    c_->indexes[index] = ix;
    auto it = c_->generations.find(gen);
    v1::GenerationRoute meta = it != c_->generations.end() ? it->second : Gen(gen);
    meta.clear_routes();
    meta.set_role(role);
    c_->generations[gen] = meta;
    c_->bump_epoch = true;
  }

  // Pauses (deadline > 0) or unpauses every shard of a generation.
  void SetPaused(uint64_t gen, int64_t deadline) {
    const v1::GenerationRoute& g = Gen(gen);
    for (const auto& route : g.routes()) {
      v1::ShardRoute r = route;
      RecomputeShardRoute(&r, {}, failed_, s_.group_order, 0);
      if (deadline > 0) {
        r.set_state(v1::SHARD_PAUSED);
        r.set_pause_deadline_ms(static_cast<uint64_t>(deadline));
      }
      c_->routes[{gen, route.shard()}] = r;
    }
    c_->bump_epoch = true;
  }

  static bool Done(const TaskRecord* t) { return t && t->status == TaskRecord::Status::kDone; }
  // Failed for good (a retryable failure within the budget is leased again).
  bool FailedTask(const TaskRecord* t) const {
    return t && t->FailedForGood(cfg_.migration.task_retries);
  }
  void Consume(uint64_t* id) {
    if (*id != 0) c_->deleted_tasks.insert(*id);
    *id = 0;
  }
  // Records a finished copy task of a shard (documents copied, the pass done) and
  // drops it.
  void Account(v1::ReshardRecord* r, v1::ReshardShard* sh, const TaskRecord& t) {
    sh->set_remaining(t.result.documents());
    sh->set_documents(sh->documents() + t.result.documents());
    r->set_documents_backfilled(r->documents_backfilled() + t.result.documents());
    out_->documents_backfilled += t.result.documents();
    sh->set_passed(true);
    DropTask(sh);
  }
  void DropTasks(v1::ReshardRecord* r) {
    for (auto& sh : *r->mutable_shards()) {
      DropTask(&sh);
    }
    for (auto& sh : *r->mutable_dst_positions()) {
      DropTask(&sh);
    }
    uint64_t v = r->verify_task_id();
    Consume(&v);
    r->set_verify_task_id(0);
  }

  uint64_t NewTask(const v1::ReshardRecord& r, v1::TaskKind kind, uint64_t gen, uint32_t shard,
                   const Strings& sources, const Strings& targets, uint64_t epoch) {
    v1::Task t = NewShardTask(s_, c_, kind, Gen(gen), shard, epoch, sources, targets,
                              static_cast<uint32_t>(cfg_.resharding.backfill_batch_size));
    const uint64_t conc = std::max<uint64_t>(1, cfg_.resharding.backfill_concurrency);
    // The throttle paces the backfill (the bulk of the copy); catch-up passes and
    // the verify are bounded by the client write rate and the index size.
    if (r.throttle_docs_per_s() > 0 && kind == v1::TASK_RESHARD_BACKFILL) {
      t.set_throttle_docs_per_s(std::max<uint64_t>(1, (r.throttle_docs_per_s() + conc - 1) / conc));
    }
    if (kind == v1::TASK_RESHARD_BACKFILL || kind == v1::TASK_RESHARD_DELTA ||
        kind == v1::TASK_RESHARD_VERIFY) {
      *t.mutable_target_route() = TaskRoute(Gen(r.dst_generation()), failed_);
    }
    c_->tasks[t.id()] = t;
    return t.id();
  }

  // Moves the reshard to `to` by the machine's table (an illegal move is logged
  // as an error and changes nothing), publishing a new epoch when `publishes`.
  bool TransitionTo(v1::ReshardRecord* r, R to, const std::string& reason, bool publishes) {
    auto e = ReshardMachine::Transition(r, to, reason, now_, publishes ? new_epoch_ : 0);
    if (!e.ok()) {
      out_->Error(std::string(e.status().message()));
      return false;
    }
    r->set_message("");
    if (publishes) {
      c_->bump_epoch = true;
      r->set_wait_epoch(new_epoch_);
    }
    if (ReshardMachine::IsTerminal(to)) r->set_ended_ms(now_);
    out_->Info(absl::StrCat("reshard ", r->id(), " (", r->index(), " ", r->old_shards(), "->",
                            r->new_shards(), " shards): ", e->from(), " -> ", e->to(), ": ",
                            reason));
    c_->events.push_back(*e);
    return true;
  }

  // Sets the step inside the current state by the machine's table; an illegal
  // step is logged as an error and changes nothing.
  void SetStep(v1::ReshardRecord* r, v1::ReshardStep step) {
    if (auto st = ReshardMachine::SetStep(r, step); !st.ok()) {
      out_->Error(std::string(st.message()));
    }
  }

  // Fails the reshard; a paused index is unpaused first.
  void Fail(v1::ReshardRecord* r, const std::string& why) {
    DropTasks(r);
    const bool paused = r->paused_at_ms() != 0;
    if (paused) {
      SetPaused(r->src_generation(), 0);
      r->set_paused_at_ms(0);
    }
    TransitionTo(r, v1::RESHARD_FAILED, why, paused);
    r->set_message(why);
  }

  // A task failed for good: fail the reshard naming it. Returns true if so.
  bool FailedForGood(v1::ReshardRecord* r, const TaskRecord* t, uint32_t shard) {
    if (!FailedTask(t)) return false;
    Fail(r, absl::StrCat(v1::TaskKind_Name(t->task.kind()), " of shard ", shard,
                         " failed: ", t->error));
    return true;
  }

  // Per-shard entries of the copy from `src` (sources chosen now).
  void InitShards(v1::ReshardRecord* r, uint64_t src, uint64_t dst) {
    r->set_src_generation(src);
    r->set_dst_generation(dst);
    r->clear_shards();
    const v1::GenerationRoute& g = Gen(src);
    for (const auto& route : g.routes()) {
      v1::ReshardShard* sh = r->add_shards();
      sh->set_shard(route.shard());
      for (const auto& n : CopySources(route, g.rf(), failed_)) sh->add_sources(n);
    }
  }

  // Backfill of shards not copied yet, up to backfill_concurrency in flight.
  // Returns false when the reshard failed.
  bool RunBackfills(v1::ReshardRecord* r) {
    int inflight = 0;
    for (const auto& sh : r->shards()) inflight += (!sh.copied() && sh.task_id() != 0);
    for (auto& sh : *r->mutable_shards()) {
      if (sh.copied()) continue;
      const TaskRecord* t = TaskOf(sh.task_id());
      if (Done(t)) {
        sh.clear_watermarks();
        for (const auto& w : t->result.watermarks()) *sh.add_watermarks() = w;
        sh.set_documents(sh.documents() + t->result.documents());
        r->set_documents_backfilled(r->documents_backfilled() + t->result.documents());
        out_->documents_backfilled += t->result.documents();
        sh.set_copied(true);
        sh.set_passed(false);
        DropTask(&sh);
        --inflight;
        continue;
      }
      if (FailedForGood(r, t, sh.shard())) return false;
      if (t == nullptr && inflight < static_cast<int>(std::max<uint64_t>(
                                         1, cfg_.resharding.backfill_concurrency))) {
        sh.set_task_id(NewTask(*r, v1::TASK_RESHARD_BACKFILL, r->src_generation(), sh.shard(),
                               {sh.sources().begin(), sh.sources().end()}, {}, s_.epoch));
        ++inflight;
      }
    }
    return true;
  }

  // The swap's final delta: every shard copies (W, F] from its fenced sources.
  // True when every shard is done; false while running or failed (check the state).
  bool RunFinalDelta(v1::ReshardRecord* r) {
    bool all = true;
    for (auto& sh : *r->mutable_shards()) {
      if (sh.passed()) continue;
      all = false;
      const TaskRecord* t = TaskOf(sh.task_id());
      if (Done(t)) {
        Account(r, &sh, *t);
        continue;
      }
      if (FailedForGood(r, t, sh.shard())) return false;
      if (t != nullptr) continue;
      const Strings fenced =
          cutover::FencedSources(sh.fences(), {sh.sources().begin(), sh.sources().end()});
      const uint64_t id = NewTask(*r, v1::TASK_RESHARD_DELTA, r->src_generation(), sh.shard(),
                                  fenced, {}, r->fence_epoch());
      v1::Task& task = c_->tasks[id];
      for (const auto& w : sh.watermarks()) *task.mutable_checkpoint()->add_watermarks() = w;
      for (const auto& f : sh.fences()) *task.add_upto() = f;
      sh.set_task_id(id);
    }
    return all;
  }

  // Continuous catch-up: every copied shard runs delta passes back to back (each
  // pass short, so it sees few changes). True when every shard has finished a pass
  // since the last round and those last passes together copied at most
  // migration.catch_up_threshold documents; passes still in flight are then
  // dropped (W stays at each shard's last finished pass). False while running or
  // when the reshard failed (check the state).
  bool RunCatchUp(v1::ReshardRecord* r) {
    if (!RunBackfills(r)) return false;
    bool all = true;
    uint64_t remaining = 0;
    for (auto& sh : *r->mutable_shards()) {
      if (!sh.copied()) {
        all = false;
        continue;
      }
      const TaskRecord* t = TaskOf(sh.task_id());
      if (Done(t)) {
        sh.clear_watermarks();
        for (const auto& w : t->result.watermarks()) *sh.add_watermarks() = w;
        Account(r, &sh, *t);
      } else if (FailedTask(t) && t->failure == v1::TASK_FAILURE_INCARNATION_CHANGED) {
        // The source's sequence is gone: copy this shard again.
        out_->Warn(absl::StrCat("reshard ", r->id(), " shard ", sh.shard(), ": ", t->error,
                                "; the shard is copied again"));
        DropTask(&sh);
        sh.set_copied(false);
        sh.set_passed(false);
        sh.clear_watermarks();
        all = false;
        continue;
      } else if (FailedForGood(r, t, sh.shard())) {
        return false;
      }
      all = all && sh.passed();
      remaining += sh.remaining();
    }
    if (all) {
      r->set_remaining(remaining);
      r->set_catch_up_passes(r->catch_up_passes() + 1);
      // Converged, or the operator forced the swap (`reshard cutover --force`):
      // this round is the last.
      if (remaining <= cfg_.migration.catch_up_threshold || r->force_cutover()) {
        for (auto& sh : *r->mutable_shards()) {
          DropTask(&sh);
        }
        StartPass(r);
        return true;
      }
      r->set_message(absl::StrCat("catch-up round ", r->catch_up_passes(), " copied ", remaining,
                                  " documents; not converged yet (threshold ",
                                  cfg_.migration.catch_up_threshold, ")"));
      StartPass(r);
    }
    for (auto& sh : *r->mutable_shards()) {
      if (!sh.copied() || TaskOf(sh.task_id()) != nullptr) continue;
      const uint64_t id = NewTask(*r, v1::TASK_RESHARD_DELTA, r->src_generation(), sh.shard(),
                                  {sh.sources().begin(), sh.sources().end()}, {}, s_.epoch);
      v1::Task& task = c_->tasks[id];
      for (const auto& w : sh.watermarks()) *task.mutable_checkpoint()->add_watermarks() = w;
      sh.set_task_id(id);
    }
    return false;
  }

  static std::string Converged(const v1::ReshardRecord& r) {
    return absl::StrCat(r.force_cutover() ? "cutover forced by the operator" : "catch-up converged",
                        " (", r.remaining(), " left)");
  }

  void StartPass(v1::ReshardRecord* r) {
    for (auto& sh : *r->mutable_shards()) sh.set_passed(false);
  }

  // A forced reshard, or a forced cutover (as a move's), bypasses the window.
  bool WindowOpen(const v1::ReshardRecord& r) const {
    if (r.force() || r.force_cutover()) return true;
    if (!r.schedule_window().empty()) {
      auto windows = PlanWindows(r.schedule_window(), cfg_);
      return !windows.ok() || InsideAnyWindow(*windows, now_);
    }
    return CheckReshardWindow(cfg_, now_, false, nullptr).ok();
  }

  // Pauses the copy's source generation (the LIVE one) and publishes it.
  void Pause(v1::ReshardRecord* r, R to, const std::string& reason) {
    r->set_paused_at_ms(now_);
    // A forced cutover is spent once writes pause: a stalled swap that unpauses
    // catches up to convergence again.
    r->set_force_cutover(false);
    r->set_fence_epoch(new_epoch_);
    SetPaused(r->src_generation(),
              now_ + absl::ToInt64Milliseconds(cfg_.migration.max_write_stall));
    for (auto& sh : *r->mutable_shards()) {
      sh.clear_fences();
      sh.set_passed(false);
    }
    r->clear_dst_positions();
    if (to == r->state()) {
      c_->bump_epoch = true;
      r->set_wait_epoch(new_epoch_);
      out_->Info(absl::StrCat("reshard ", r->id(), " (", r->index(), "): writes paused: ", reason));
    } else {
      TransitionTo(r, to, reason, true);
    }
    SetStep(r, v1::RESHARD_STEP_PAUSING);  // after the move: the state must allow it
  }

  // Writes held too long: unpause and go back to catching up (or fail).
  bool StallCheck(v1::ReshardRecord* r, R back_to) {
    if (!cutover::StallExceeded(r->paused_at_ms(), now_, cfg_.migration.max_write_stall)) {
      return false;
    }
    DropTasks(r);
    r->set_stall_retries(r->stall_retries() + 1);
    if (r->stall_retries() > cfg_.migration.max_stall_retries) {
      Fail(r, absl::StrCat("write stall exceeded max_write_stall ", r->stall_retries(), " times"));
      return true;
    }
    BackToCatchUp(r, back_to,
                  absl::StrCat("swap exceeded max_write_stall ",
                               absl::FormatDuration(cfg_.migration.max_write_stall),
                               "; unpaused, retry ", r->stall_retries()));
    return true;
  }

  // Unpauses the copy's source and resumes catching up: in `back_to` when that is
  // another state (forward swap -> catching_up), else at the rollback's catch-up
  // step. Publishes the unpause.
  void BackToCatchUp(v1::ReshardRecord* r, R back_to, const std::string& why) {
    SetPaused(r->src_generation(), 0);
    r->set_paused_at_ms(0);
    StartPass(r);
    if (back_to == r->state()) {
      SetStep(r, v1::RESHARD_STEP_CATCH_UP);
      r->set_message(why);
      r->set_wait_epoch(new_epoch_);
    } else {
      TransitionTo(r, back_to, why, true);
    }
  }

  // The swap's fence step: FENCE every owner of every source shard at the fence
  // epoch (F per node) and read the position of every destination shard's owners
  // (a FENCE at epoch 0 raises nothing: W for a later rollback). Returns true when
  // done and enough sources are fenced; on too few, goes back to `back_to`.
  bool Fence(v1::ReshardRecord* r, R back_to) {
    if (r->step() == v1::RESHARD_STEP_PAUSING) {
      if (!Acked(*r) &&
          absl::Milliseconds(now_ - r->paused_at_ms()) < cfg_.migration.drain_timeout) {
        return false;
      }
      SetStep(r, v1::RESHARD_STEP_FENCING);
      const v1::GenerationRoute& src = Gen(r->src_generation());
      for (auto& sh : *r->mutable_shards()) {
        sh.set_task_id(NewTask(*r, v1::TASK_FENCE, r->src_generation(), sh.shard(), {},
                               AllOwners(src.routes(static_cast<int>(sh.shard())), failed_),
                               r->fence_epoch()));
      }
      const v1::GenerationRoute& dst = Gen(r->dst_generation());
      for (const auto& route : dst.routes()) {
        v1::ReshardShard* p = r->add_dst_positions();
        p->set_shard(route.shard());
        p->set_task_id(NewTask(*r, v1::TASK_FENCE, r->dst_generation(), route.shard(), {},
                               AllOwners(route, failed_), 0));
      }
      return false;
    }
    for (auto& sh : *r->mutable_shards()) {
      const TaskRecord* t = TaskOf(sh.task_id());
      if (FailedForGood(r, t, sh.shard())) return false;
      if (!Done(t)) return false;
    }
    for (auto& p : *r->mutable_dst_positions()) {
      const TaskRecord* t = TaskOf(p.task_id());
      if (FailedForGood(r, t, p.shard())) return false;
      if (!Done(t)) return false;
    }
    uint32_t short_shards = 0;
    for (auto& sh : *r->mutable_shards()) {
      const TaskRecord* t = TaskOf(sh.task_id());
      sh.clear_fences();
      for (const auto& f : t->result.watermarks()) *sh.add_fences() = f;
      const uint32_t good = cutover::FencedWithCurrentWatermark(sh.watermarks(), sh.fences());
      if (good < static_cast<uint32_t>(sh.sources_size()) || sh.sources_size() == 0) {
        // A source lost its sequence (or left): copy the shard again from the
        // current owners.
        ++short_shards;
        sh.set_copied(false);
        sh.clear_watermarks();
        sh.clear_sources();
        const v1::GenerationRoute& g = Gen(r->src_generation());
        for (const auto& n : CopySources(g.routes(static_cast<int>(sh.shard())), g.rf(), failed_)) {
          sh.add_sources(n);
        }
      }
      DropTask(&sh);
    }
    for (auto& p : *r->mutable_dst_positions()) {
      const TaskRecord* t = TaskOf(p.task_id());
      p.clear_watermarks();
      for (const auto& w : t->result.watermarks()) *p.add_watermarks() = w;
      for (const auto& n : t->result.unreachable()) p.add_sources(n);  // positions unknown
      DropTask(&p);
    }
    if (short_shards > 0) {
      BackToCatchUp(r, back_to,
                    absl::StrCat(short_shards,
                                 " shards have fewer sources fenced with a current watermark "
                                 "than they were copied from"));
      return false;
    }
    StartPass(r);
    SetStep(r, v1::RESHARD_STEP_FINAL_DELTA);
    return true;
  }

  // The flip: `to_live` becomes LIVE, `from` gets `from_role`, one epoch.
  void Flip(v1::ReshardRecord* r, uint64_t from, v1::GenerationRole from_role, uint64_t to_live,
            uint32_t shards) {
    SetPaused(from, 0);
    SetRole(r->index(), from, from_role);
    SetRole(r->index(), to_live, v1::GENERATION_LIVE);
    v1::Index ix = IndexNow(r->index());
    ix.set_live_generation(to_live);
    ix.set_shards(shards);
    c_->indexes[r->index()] = ix;
    r->set_stall_ms(static_cast<uint64_t>(now_ - r->paused_at_ms()));
    r->set_paused_at_ms(0);
    r->set_wait_epoch(new_epoch_);
  }

  // Deletes every shard of `gen` on its owners (CLEANUP tasks). True when done.
  bool DropGeneration(v1::ReshardRecord* r, uint64_t gen) {
    if (!Acked(*r)) return false;
    if (r->step() != v1::RESHARD_STEP_DROPPING) {
      SetStep(r, v1::RESHARD_STEP_DROPPING);
      r->clear_shards();
      for (const auto& route : Gen(gen).routes()) {
        v1::ReshardShard* sh = r->add_shards();
        sh->set_shard(route.shard());
        for (const auto& n : AllOwners(route, failed_)) sh->add_sources(n);
        sh->set_task_id(NewTask(*r, v1::TASK_CLEANUP, gen, route.shard(), {},
                                {sh->sources().begin(), sh->sources().end()}, s_.epoch));
      }
      return false;
    }
    for (auto& sh : *r->mutable_shards()) {
      const TaskRecord* t = TaskOf(sh.task_id());
      if (sh.task_id() == 0) continue;
      if (FailedForGood(r, t, sh.shard())) return false;
      if (t == nullptr) {
        // Lost (e.g. consumed before a crash): issue it again.
        sh.set_task_id(NewTask(*r, v1::TASK_CLEANUP, gen, sh.shard(), {},
                               {sh.sources().begin(), sh.sources().end()}, s_.epoch));
        return false;
      }
      if (!Done(t)) return false;
    }
    for (auto& sh : *r->mutable_shards()) {
      DropTask(&sh);
    }
    v1::Index ix = IndexNow(r->index());
    for (auto& g : *ix.mutable_generations()) {
      if (g.id() == gen) g.set_role(v1::GENERATION_DROPPED);
    }
    c_->indexes[r->index()] = ix;
    SetStep(r, v1::RESHARD_STEP_NONE);
    return true;
  }

  // Verify; returns true when the shadow matches. Sends the reshard back to
  // catching_up for one more pass when mismatches need a re-check, or fails it.
  bool Verify(v1::ReshardRecord* r) {
    const TaskRecord* t = TaskOf(r->verify_task_id());
    if (t == nullptr) {
      const uint64_t id =
          NewTask(*r, v1::TASK_RESHARD_VERIFY, r->src_generation(), 0, {}, {}, s_.epoch);
      v1::Task& task = c_->tasks[id];
      *task.mutable_source_route() = TaskRoute(Gen(r->src_generation()), failed_);
      task.set_ae_buckets(kVerifyBuckets);
      r->set_verify_task_id(id);
      return false;
    }
    if (FailedForGood(r, t, 0)) return false;
    if (!Done(t)) return false;
    uint64_t id = r->verify_task_id();
    Consume(&id);
    r->set_verify_task_id(0);
    r->set_verify_rounds(r->verify_rounds() + 1);
    r->set_verify_mismatches(t->result.mismatches());
    if (t->result.mismatches() == 0) {
      r->clear_divergent_keys();
      return true;
    }
    std::set<std::string> before(r->divergent_keys().begin(), r->divergent_keys().end());
    Strings stayed;
    for (const auto& k : t->result.divergent_keys()) {
      if (before.count(k)) stayed.push_back(k);
    }
    const bool first = before.empty();
    if (!stayed.empty() || r->verify_rounds() >= kMaxVerifyRounds) {
      r->clear_divergent_keys();
      for (const auto& k : stayed.empty() ? Strings(t->result.divergent_keys().begin(),
                                                    t->result.divergent_keys().end())
                                          : stayed) {
        r->add_divergent_keys(k);
      }
      Fail(r, absl::StrCat(
                  "verify: ", r->divergent_keys_size(),
                  " keys differ between the live and shadow generations after a "
                  "catch-up pass: ",
                  absl::StrJoin(r->divergent_keys().begin(),
                                r->divergent_keys().begin() + std::min(5, r->divergent_keys_size()),
                                ", "),
                  r->divergent_keys_size() > 5 ? ", ..." : ""));
      return false;
    }
    r->clear_divergent_keys();
    for (const auto& k : t->result.divergent_keys()) r->add_divergent_keys(k);
    StartPass(r);
    TransitionTo(r, v1::RESHARD_CATCHING_UP,
                 absl::StrCat("verify found ", t->result.mismatches(), " mismatches (",
                              t->result.newer_in_source(), " newer in the live generation)",
                              first ? "" : ", none of the previous ones",
                              "; re-checked after one more catch-up pass"),
                 false);
    return false;
  }

  void Step(v1::ReshardRecord* r) {
    switch (r->state()) {
      case v1::RESHARD_SHADOW: {
        v1::Index ix = IndexNow(r->index());
        v1::GenerationRoute route = BuildInitialRoute(ix.name(), r->new_generation(),
                                                      r->new_shards(), ix.rf(), s_.RoutingGroups());
        route.set_role(v1::GENERATION_SHADOW);
        for (const auto& sr : route.routes()) c_->routes[{r->new_generation(), sr.shard()}] = sr;
        route.clear_routes();
        c_->generations[r->new_generation()] = route;
        v1::Generation* g = ix.add_generations();
        g->set_id(r->new_generation());
        g->set_shards(r->new_shards());
        g->set_role(v1::GENERATION_SHADOW);
        c_->indexes[ix.name()] = ix;
        TransitionTo(
            r, v1::RESHARD_DUAL_WRITE,
            absl::StrCat("shadow generation ", r->new_generation(), " (", ix.name(), "__reshard_",
                         r->new_shards(), ") created; every write also goes there"),
            true);
        return;
      }
      case v1::RESHARD_DUAL_WRITE:
        if (!Acked(*r)) return;
        InitShards(r, r->old_generation(), r->new_generation());
        TransitionTo(r, v1::RESHARD_BACKFILL, "every live worker acked the dual-write epoch",
                     false);
        return;
      case v1::RESHARD_BACKFILL: {
        if (!RunBackfills(r)) return;
        bool all = true;
        for (const auto& sh : r->shards()) all = all && sh.copied();
        if (!all) return;
        StartPass(r);
        TransitionTo(
            r, v1::RESHARD_CATCHING_UP,
            absl::StrCat("backfill done: ", r->documents_backfilled(), " documents re-hashed"),
            false);
        return;
      }
      case v1::RESHARD_CATCHING_UP: {
        if (r->wait_epoch() != 0 && !Acked(*r)) return;  // an unpause is being published
        if (!RunCatchUp(r)) return;
        // Outside the window a converged catch-up keeps catching up, and verifies
        // only once the window opens (right before the swap, where it counts): a
        // verify on every converged round meant an event pair every few ms.
        if (!WindowOpen(*r)) {
          r->set_message("waiting for a resharding window before the swap");
          StartPass(r);
          return;
        }
        if (cfg_.resharding.verify_before_swap) {
          TransitionTo(r, v1::RESHARD_VERIFY, Converged(*r), false);
          return;
        }
        Pause(r, v1::RESHARD_SWAP_PAUSED, Converged(*r) + "; verify_before_swap is off");
        return;
      }
      case v1::RESHARD_VERIFY:
        if (!Verify(r)) return;
        if (!WindowOpen(*r)) {
          r->set_message("verified; waiting for a resharding window before the swap");
          StartPass(r);
          TransitionTo(r, v1::RESHARD_CATCHING_UP,
                       "verified; outside the resharding window: keep catching up", false);
          return;
        }
        Pause(r, v1::RESHARD_SWAP_PAUSED, "verified: live and shadow agree");
        return;
      case v1::RESHARD_SWAP_PAUSED:
        if (StallCheck(r, v1::RESHARD_CATCHING_UP)) return;
        if (!Fence(r, v1::RESHARD_CATCHING_UP)) return;
        TransitionTo(r, v1::RESHARD_SWAP_FENCED, "live generation fenced", false);
        return;
      case v1::RESHARD_SWAP_FENCED:
        if (StallCheck(r, v1::RESHARD_CATCHING_UP)) return;
        if (!RunFinalDelta(r)) return;
        TransitionTo(r, v1::RESHARD_SWAP_FINAL_DELTA, "final delta copied", false);
        return;
      case v1::RESHARD_SWAP_FINAL_DELTA:
        if (StallCheck(r, v1::RESHARD_CATCHING_UP)) return;
        Flip(r, r->old_generation(), v1::GENERATION_RETAINED, r->new_generation(), r->new_shards());
        SetStep(r, v1::RESHARD_STEP_NONE);
        TransitionTo(r, v1::RESHARD_RETENTION,
                     absl::StrCat("flipped: generation ", r->new_generation(), " is LIVE with ",
                                  r->new_shards(), " shards; generation ", r->old_generation(),
                                  " retained (reverse dual-write)"),
                     true);
        return;
      case v1::RESHARD_RETENTION:
        if (!r->complete_requested() &&
            !ReshardMachine::RetentionExpired(
                *r, now_, static_cast<double>(cfg_.resharding.retain_old_index_hours))) {
          return;
        }
        SetRole(r->index(), r->old_generation(), v1::GENERATION_DROPPED);
        SetStep(r, v1::RESHARD_STEP_NONE);
        TransitionTo(
            r, v1::RESHARD_CLEANUP,
            r->complete_requested() ? "completed by the operator" : "retain_old_index_hours passed",
            true);
        return;
      case v1::RESHARD_CLEANUP:
        if (!DropGeneration(r, r->old_generation())) return;
        TransitionTo(r, v1::RESHARD_DONE,
                     absl::StrCat("old generation ", r->old_generation(), " deleted"), false);
        return;
      case v1::RESHARD_ABORTING:
        if (r->step() == v1::RESHARD_STEP_UNROUTE) {
          DropTasks(r);
          if (r->paused_at_ms() != 0) {
            SetPaused(r->old_generation(), 0);
            r->set_paused_at_ms(0);
          }
          if (s_.generations.count(r->new_generation())) {
            SetRole(r->index(), r->new_generation(), v1::GENERATION_DROPPED);
            r->set_wait_epoch(new_epoch_);
          } else {
            r->set_wait_epoch(0);
          }
          SetStep(r, v1::RESHARD_STEP_UNROUTED);
          return;
        }
        if (!s_.generations.count(r->new_generation()) || DropGeneration(r, r->new_generation())) {
          SetStep(r, v1::RESHARD_STEP_NONE);
          TransitionTo(r, v1::RESHARD_ABORTED,
                       "shadow dropped; the index never left its old generation", false);
        }
        return;
      case v1::RESHARD_ROLLING_BACK:
        StepRollback(r);
        return;
      default:
        return;
    }
  }

  // The swap run backwards (DESIGN §7): catch-up from the new generation's change
  // sequences (from the positions read at the swap) into the old one, pause, fence
  // the new generation, final delta, flip back, drop the new generation.
  void StepRollback(v1::ReshardRecord* r) {
    const v1::ReshardStep step = r->step();
    if (step == v1::RESHARD_STEP_START) {
      InitShards(r, r->new_generation(), r->old_generation());
      for (auto& sh : *r->mutable_shards()) {
        const v1::ReshardShard* pos = nullptr;
        for (const auto& p : r->dst_positions()) {
          if (p.shard() == sh.shard()) pos = &p;
        }
        bool all = pos != nullptr && sh.sources_size() > 0;
        for (const auto& n : sh.sources()) {
          const v1::Watermark* w = nullptr;
          if (pos) {
            for (const auto& x : pos->watermarks()) {
              if (x.node() == n) w = &x;
            }
          }
          if (w == nullptr) {
            all = false;
            break;
          }
          *sh.add_watermarks() = *w;
        }
        // Without a position for every source the shard is copied whole.
        sh.set_copied(all);
        if (!all) sh.clear_watermarks();
      }
      StartPass(r);
      SetStep(r, v1::RESHARD_STEP_CATCH_UP);
      return;
    }
    if (step == v1::RESHARD_STEP_CATCH_UP) {
      if (r->wait_epoch() != 0 && !Acked(*r)) return;
      if (!RunCatchUp(r)) return;
      Pause(r, v1::RESHARD_ROLLING_BACK, "rollback catch-up converged");
      return;
    }
    if (step == v1::RESHARD_STEP_PAUSING || step == v1::RESHARD_STEP_FENCING) {
      if (StallCheck(r, v1::RESHARD_ROLLING_BACK)) return;
      Fence(r, v1::RESHARD_ROLLING_BACK);
      return;
    }
    if (step == v1::RESHARD_STEP_FINAL_DELTA) {
      if (StallCheck(r, v1::RESHARD_ROLLING_BACK)) return;
      if (!RunFinalDelta(r)) return;
      Flip(r, r->new_generation(), v1::GENERATION_DROPPED, r->old_generation(), r->old_shards());
      SetStep(r, v1::RESHARD_STEP_FLIPPED);
      out_->Info(absl::StrCat("reshard ", r->id(), " (", r->index(), "): rolled back: generation ",
                              r->old_generation(), " is LIVE again"));
      return;
    }
    // "flipped", then "dropping": delete the new generation on its owners.
    if (DropGeneration(r, r->new_generation())) {
      TransitionTo(
          r, v1::RESHARD_ROLLED_BACK,
          absl::StrCat("rolled back: generation ", r->old_generation(), " is LIVE with ",
                       r->old_shards(), " shards; generation ", r->new_generation(), " deleted"),
          false);
    }
  }
};

}  // namespace

StepOutput ReshardStepper::Step(const ClusterState& state, const StepInput& in,
                                Change* change) const {
  return RunStep<ReshardTick>(state, change, config_, in);
}

}  // namespace miroir::coordinator
