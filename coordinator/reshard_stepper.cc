#include "coordinator/reshard_stepper.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/route_sets.h"
#include "common/schedule_window.h"
#include "coordinator/cutover.h"
#include "coordinator/gates.h"
#include "coordinator/reshard_gates.h"
#include "coordinator/routing_tables.h"

namespace miroir::coordinator {

ReshardState ReshardStateOf(const v1::ReshardRecord& r) {
  auto s = ParseReshardState(r.state());
  return s.ok() ? *s : ReshardState::kFailed;
}

ReshardPlan ReshardPlanOf(const v1::ReshardRecord& r) {
  ReshardPlan p;
  p.id = r.id();
  p.index = r.index();
  p.old_shards = r.old_shards();
  p.new_shards = r.new_shards();
  p.old_generation = r.old_generation();
  p.new_generation = r.new_generation();
  p.state = ReshardStateOf(r);
  auto ff = ParseReshardState(r.failed_from());
  p.failed_from = ff.ok() ? *ff : ReshardState::kShadow;
  p.state_since_ms = r.state_since_ms();
  p.swapped_at_ms = r.swapped_at_ms();
  p.force = r.force();
  return p;
}

void SetReshardPlan(const ReshardPlan& p, v1::ReshardRecord* r) {
  r->set_state(std::string(ReshardStateName(p.state)));
  r->set_failed_from(std::string(ReshardStateName(p.failed_from)));
  r->set_state_since_ms(p.state_since_ms);
  r->set_swapped_at_ms(p.swapped_at_ms);
}

bool ReshardEnded(const v1::ReshardRecord& r) {
  return ReshardMachine::IsTerminal(ReshardStateOf(r));
}

namespace {

using R = ReshardState;
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
      if (ReshardEnded(rec) || ReshardStateOf(rec) == R::kFailed) continue;
      v1::ReshardRecord r = rec;
      for (int i = 0; i < kMaxStepsPerTick; ++i) {
        const std::string before = r.state() + "/" + r.step();
        const bool bumped = c_->bump_epoch;
        Step(&r);
        if (r.state() + "/" + r.step() == before || (c_->bump_epoch && !bumped) ||
            ReshardEnded(r) || ReshardStateOf(r) == R::kFailed) {
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

  bool Go(v1::ReshardRecord* r, R to, const std::string& reason, bool publishes) {
    ReshardPlan p = ReshardPlanOf(*r);
    auto e = ReshardMachine::Transition(&p, to, reason, now_, publishes ? new_epoch_ : 0);
    if (!e.ok()) {
      out_->Error(std::string(e.status().message()));
      return false;
    }
    SetReshardPlan(p, r);
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

  // Fails the reshard; a paused index is unpaused first.
  void Fail(v1::ReshardRecord* r, const std::string& why) {
    DropTasks(r);
    const bool paused = r->paused_at_ms() != 0;
    if (paused) {
      SetPaused(r->src_generation(), 0);
      r->set_paused_at_ms(0);
    }
    Go(r, R::kFailed, why, paused);
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
      } else if (FailedTask(t) && t->error.rfind("incarnation changed:", 0) == 0) {
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
      if (remaining <= cfg_.migration.catch_up_threshold) {
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

  void StartPass(v1::ReshardRecord* r) {
    for (auto& sh : *r->mutable_shards()) sh.set_passed(false);
  }

  bool WindowOpen(const v1::ReshardRecord& r) const {
    if (r.force()) return true;
    if (!r.schedule_window().empty()) {
      auto windows = PlanWindows(r.schedule_window(), cfg_);
      return !windows.ok() || InsideAnyWindow(*windows, now_);
    }
    return CheckReshardWindow(cfg_, now_, false, nullptr).ok();
  }

  // Pauses the copy's source generation (the LIVE one) and publishes it.
  void Pause(v1::ReshardRecord* r, R to, const std::string& reason) {
    r->set_paused_at_ms(now_);
    r->set_fence_epoch(new_epoch_);
    r->set_step("pausing");
    SetPaused(r->src_generation(),
              now_ + absl::ToInt64Milliseconds(cfg_.migration.max_write_stall));
    for (auto& sh : *r->mutable_shards()) {
      sh.clear_fences();
      sh.set_passed(false);
    }
    r->clear_dst_positions();
    if (to == ReshardStateOf(*r)) {
      c_->bump_epoch = true;
      r->set_wait_epoch(new_epoch_);
      out_->Info(absl::StrCat("reshard ", r->id(), " (", r->index(), "): writes paused: ", reason));
    } else {
      Go(r, to, reason, true);
    }
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
    if (back_to == ReshardStateOf(*r)) {
      r->set_step("catch_up");
      r->set_message(why);
      r->set_wait_epoch(new_epoch_);
    } else {
      Go(r, back_to, why, true);
    }
  }

  // The swap's fence step: FENCE every owner of every source shard at the fence
  // epoch (F per node) and read the position of every destination shard's owners
  // (a FENCE at epoch 0 raises nothing: W for a later rollback). Returns true when
  // done and enough sources are fenced; on too few, goes back to `back_to`.
  bool Fence(v1::ReshardRecord* r, R back_to) {
    if (r->step() == "pausing") {
      if (!Acked(*r) &&
          absl::Milliseconds(now_ - r->paused_at_ms()) < cfg_.migration.drain_timeout) {
        return false;
      }
      r->set_step("fencing");
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
    r->set_step("final_delta");
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
    if (r->step() != "dropping") {
      r->set_step("dropping");
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
    r->set_step("");
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
    Go(r, R::kCatchingUp,
       absl::StrCat("verify found ", t->result.mismatches(), " mismatches (",
                    t->result.newer_in_source(), " newer in the live generation)",
                    first ? "" : ", none of the previous ones",
                    "; re-checked after one more catch-up pass"),
       false);
    return false;
  }

  void Step(v1::ReshardRecord* r) {
    switch (ReshardStateOf(*r)) {
      case R::kShadow: {
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
        Go(r, R::kDualWrite,
           absl::StrCat("shadow generation ", r->new_generation(), " (", ix.name(), "__reshard_",
                        r->new_shards(), ") created; every write also goes there"),
           true);
        return;
      }
      case R::kDualWrite:
        if (!Acked(*r)) return;
        InitShards(r, r->old_generation(), r->new_generation());
        Go(r, R::kBackfill, "every live worker acked the dual-write epoch", false);
        return;
      case R::kBackfill: {
        if (!RunBackfills(r)) return;
        bool all = true;
        for (const auto& sh : r->shards()) all = all && sh.copied();
        if (!all) return;
        StartPass(r);
        Go(r, R::kCatchingUp,
           absl::StrCat("backfill done: ", r->documents_backfilled(), " documents re-hashed"),
           false);
        return;
      }
      case R::kCatchingUp: {
        if (r->wait_epoch() != 0 && !Acked(*r)) return;  // an unpause is being published
        if (!RunCatchUp(r)) return;
        if (cfg_.resharding.verify_before_swap) {
          Go(r, R::kVerify, absl::StrCat("catch-up converged (", r->remaining(), " left)"), false);
          return;
        }
        if (!WindowOpen(*r)) {
          r->set_message("waiting for a resharding window before the swap");
          StartPass(r);
          return;
        }
        Pause(r, R::kSwapPaused, "catch-up converged; verify_before_swap is off");
        return;
      }
      case R::kVerify:
        if (!Verify(r)) return;
        if (!WindowOpen(*r)) {
          r->set_message("verified; waiting for a resharding window before the swap");
          StartPass(r);
          Go(r, R::kCatchingUp, "verified; outside the resharding window: keep catching up", false);
          return;
        }
        Pause(r, R::kSwapPaused, "verified: live and shadow agree");
        return;
      case R::kSwapPaused:
        if (StallCheck(r, R::kCatchingUp)) return;
        if (!Fence(r, R::kCatchingUp)) return;
        Go(r, R::kSwapFenced, "live generation fenced", false);
        return;
      case R::kSwapFenced:
        if (StallCheck(r, R::kCatchingUp)) return;
        if (!RunFinalDelta(r)) return;
        Go(r, R::kSwapFinalDelta, "final delta copied", false);
        return;
      case R::kSwapFinalDelta:
        if (StallCheck(r, R::kCatchingUp)) return;
        Flip(r, r->old_generation(), v1::GENERATION_RETAINED, r->new_generation(), r->new_shards());
        r->set_step("");
        Go(r, R::kRetention,
           absl::StrCat("flipped: generation ", r->new_generation(), " is LIVE with ",
                        r->new_shards(), " shards; generation ", r->old_generation(),
                        " retained (reverse dual-write)"),
           true);
        return;
      case R::kRetention:
        if (!r->complete_requested() &&
            !ReshardMachine::RetentionExpired(
                ReshardPlanOf(*r), now_,
                static_cast<double>(cfg_.resharding.retain_old_index_hours))) {
          return;
        }
        SetRole(r->index(), r->old_generation(), v1::GENERATION_DROPPED);
        r->set_step("");
        Go(r, R::kCleanup,
           r->complete_requested() ? "completed by the operator" : "retain_old_index_hours passed",
           true);
        return;
      case R::kCleanup:
        if (!DropGeneration(r, r->old_generation())) return;
        Go(r, R::kDone, absl::StrCat("old generation ", r->old_generation(), " deleted"), false);
        return;
      case R::kAborting:
        if (r->step() == "unroute") {
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
          r->set_step("unrouted");
          return;
        }
        if (!s_.generations.count(r->new_generation()) || DropGeneration(r, r->new_generation())) {
          r->set_step("");
          Go(r, R::kAborted, "shadow dropped; the index never left its old generation", false);
        }
        return;
      case R::kRollingBack:
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
    const std::string step = r->step();
    if (step == "start") {
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
      r->set_step("catch_up");
      return;
    }
    if (step == "catch_up") {
      if (r->wait_epoch() != 0 && !Acked(*r)) return;
      if (!RunCatchUp(r)) return;
      Pause(r, R::kRollingBack, "rollback catch-up converged");
      return;
    }
    if (step == "pausing" || step == "fencing") {
      if (StallCheck(r, R::kRollingBack)) return;
      Fence(r, R::kRollingBack);
      return;
    }
    if (step == "final_delta") {
      if (StallCheck(r, R::kRollingBack)) return;
      if (!RunFinalDelta(r)) return;
      Flip(r, r->new_generation(), v1::GENERATION_DROPPED, r->old_generation(), r->old_shards());
      r->set_step("flipped");
      out_->Info(absl::StrCat("reshard ", r->id(), " (", r->index(), "): rolled back: generation ",
                              r->old_generation(), " is LIVE again"));
      return;
    }
    // "flipped", then "dropping": delete the new generation on its owners.
    if (DropGeneration(r, r->new_generation())) {
      Go(r, R::kRolledBack,
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
