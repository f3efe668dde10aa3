#include "coordinator/reshard_runner.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/route_sets.h"
#include "common/schedule_window.h"
#include "coordinator/coordinator.h"
#include "coordinator/gates.h"
#include "coordinator/move_machine.h"
#include "coordinator/reshard_gates.h"
#include "coordinator/reshard_machine.h"
#include "coordinator/routing_tables.h"
#include "coordinator/status_macros.h"
#include "spdlog/spdlog.h"

namespace miroir::coordinator {
namespace {

using R = ReshardState;
using Strings = std::vector<std::string>;

constexpr int kMaxStepsPerTick = 4;
constexpr uint32_t kMaxShards = 65536;
constexpr uint32_t kMaxVerifyRounds = 5;
constexpr uint32_t kVerifyBuckets = 256;
constexpr double kAssumedDocsPerS = 10000;  // dry run of an unthrottled reshard

R StateOf(const v1::ReshardRecord& r) {
  auto s = ParseReshardState(r.state());
  return s.ok() ? *s : R::kFailed;
}

ReshardPlan ToPlan(const v1::ReshardRecord& r) {
  ReshardPlan p;
  p.id = r.id();
  p.index = r.index();
  p.old_shards = r.old_shards();
  p.new_shards = r.new_shards();
  p.old_generation = r.old_generation();
  p.new_generation = r.new_generation();
  p.state = StateOf(r);
  auto ff = ParseReshardState(r.failed_from());
  p.failed_from = ff.ok() ? *ff : R::kShadow;
  p.state_since_ms = r.state_since_ms();
  p.swapped_at_ms = r.swapped_at_ms();
  p.force = r.force();
  return p;
}

void FromPlan(const ReshardPlan& p, v1::ReshardRecord* r) {
  r->set_state(std::string(ReshardStateName(p.state)));
  r->set_failed_from(std::string(ReshardStateName(p.failed_from)));
  r->set_state_since_ms(p.state_since_ms);
  r->set_swapped_at_ms(p.swapped_at_ms);
}

bool Ended(const v1::ReshardRecord& r) { return ReshardMachine::IsTerminal(StateOf(r)); }

// The newest reshard of `index` (nullptr when none).
const v1::ReshardRecord* Newest(const ClusterState& s, const std::string& index) {
  const v1::ReshardRecord* out = nullptr;
  for (const auto& [id, r] : s.reshards) {
    if (r.index() == index) out = &r;
  }
  return out;
}

Strings WithoutFailed(const google::protobuf::RepeatedPtrField<std::string>& a,
                      const std::set<std::string>& failed) {
  Strings out;
  for (const auto& x : a) {
    if (!failed.count(x)) out.push_back(x);
  }
  return out;
}

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

class ReshardStepper {
 public:
  ReshardStepper(const ClusterState& s, Change* c, const CoordinatorConfig& cfg, int64_t now,
                 bool acks_ready, WorkerRegistry& reg, std::atomic<uint64_t>* backfilled)
      : s_(s),
        c_(c),
        cfg_(cfg),
        now_(now),
        acks_ready_(acks_ready),
        reg_(reg),
        new_epoch_(s.epoch + 1),
        failed_(s.FailedNodes()),
        backfilled_(backfilled) {}

  void Run() {
    for (const auto& [id, rec] : s_.reshards) {
      if (Ended(rec) || StateOf(rec) == R::kFailed) continue;
      v1::ReshardRecord r = rec;
      for (int i = 0; i < kMaxStepsPerTick; ++i) {
        const std::string before = r.state() + "/" + r.step();
        const bool bumped = c_->bump_epoch;
        Step(&r);
        if (r.state() + "/" + r.step() == before || (c_->bump_epoch && !bumped) ||
            Ended(r) || StateOf(r) == R::kFailed) {
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

  const TaskRecord* TaskOf(uint64_t id) const {
    if (id == 0) return nullptr;
    auto it = s_.tasks.find(id);
    return it == s_.tasks.end() ? nullptr : &it->second;
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
  // Deletes the shard entry's task (its result has been used, or is not wanted).
  void DropTask(v1::ReshardShard* sh) {
    if (sh->task_id() != 0) c_->deleted_tasks.insert(sh->task_id());
    sh->set_task_id(0);
  }
  // Records a finished copy task of a shard (documents copied, the pass done) and
  // drops it.
  void Account(v1::ReshardRecord* r, v1::ReshardShard* sh, const TaskRecord& t) {
    sh->set_remaining(t.result.documents());
    sh->set_documents(sh->documents() + t.result.documents());
    r->set_documents_backfilled(r->documents_backfilled() + t.result.documents());
    backfilled_->fetch_add(t.result.documents());
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

  bool Acked(const v1::ReshardRecord& r) const {
    return acks_ready_ && (r.wait_epoch() == 0 || reg_.AllLiveAcked(r.wait_epoch()));
  }

  bool Go(v1::ReshardRecord* r, R to, const std::string& reason, bool publishes) {
    ReshardPlan p = ToPlan(*r);
    auto e = ReshardMachine::Transition(&p, to, reason, now_, publishes ? new_epoch_ : 0);
    if (!e.ok()) {
      spdlog::error("{}", std::string(e.status().message()));
      return false;
    }
    FromPlan(p, r);
    r->set_message("");
    if (publishes) {
      c_->bump_epoch = true;
      r->set_wait_epoch(new_epoch_);
    }
    if (ReshardMachine::IsTerminal(to)) r->set_ended_ms(now_);
    spdlog::info("reshard {} ({} {}->{} shards): {} -> {}: {}", r->id(), r->index(),
                 r->old_shards(), r->new_shards(), e->from(), e->to(), reason);
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
        backfilled_->fetch_add(t->result.documents());
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
      Strings fenced;
      for (const auto& f : sh.fences()) {
        if (std::find(sh.sources().begin(), sh.sources().end(), f.node()) != sh.sources().end()) {
          fenced.push_back(f.node());
        }
      }
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
        spdlog::warn("reshard {} shard {}: {}; the shard is copied again", r->id(), sh.shard(),
                     t->error);
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
    if (to == StateOf(*r)) {
      c_->bump_epoch = true;
      r->set_wait_epoch(new_epoch_);
      spdlog::info("reshard {} ({}): writes paused: {}", r->id(), r->index(), reason);
    } else {
      Go(r, to, reason, true);
    }
  }

  // Writes held too long: unpause and go back to catching up (or fail).
  bool StallCheck(v1::ReshardRecord* r, R back_to) {
    if (r->paused_at_ms() == 0 ||
        absl::Milliseconds(now_ - r->paused_at_ms()) < cfg_.migration.max_write_stall) {
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
    if (back_to == StateOf(*r)) {
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
      if (!Acked(*r) && absl::Milliseconds(now_ - r->paused_at_ms()) < cfg_.migration.drain_timeout) {
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
      std::map<std::string, std::string> fenced;
      for (const auto& f : t->result.watermarks()) {
        *sh.add_fences() = f;
        fenced[f.node()] = f.incarnation();
      }
      uint32_t good = 0;
      for (const auto& w : sh.watermarks()) {
        auto it = fenced.find(w.node());
        if (it != fenced.end() && it->second == w.incarnation()) ++good;
      }
      if (good < static_cast<uint32_t>(sh.sources_size()) || sh.sources_size() == 0) {
        // A source lost its sequence (or left): copy the shard again from the
        // current owners.
        ++short_shards;
        sh.set_copied(false);
        sh.clear_watermarks();
        sh.clear_sources();
        const v1::GenerationRoute& g = Gen(r->src_generation());
        for (const auto& n :
             CopySources(g.routes(static_cast<int>(sh.shard())), g.rf(), failed_)) {
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
      const uint64_t id = NewTask(*r, v1::TASK_RESHARD_VERIFY, r->src_generation(), 0, {}, {},
                                  s_.epoch);
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
      Fail(r, absl::StrCat("verify: ", r->divergent_keys_size(),
                           " keys differ between the live and shadow generations after a "
                           "catch-up pass: ",
                           absl::StrJoin(r->divergent_keys().begin(),
                                         r->divergent_keys().begin() +
                                             std::min(5, r->divergent_keys_size()),
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
    switch (StateOf(*r)) {
      case R::kShadow: {
        v1::Index ix = IndexNow(r->index());
        v1::GenerationRoute route = BuildInitialRoute(ix.name(), r->new_generation(),
                                                      r->new_shards(), ix.rf(),
                                                      s_.RoutingGroups());
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
          Go(r, R::kCatchingUp, "verified; outside the resharding window: keep catching up",
             false);
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
        Flip(r, r->old_generation(), v1::GENERATION_RETAINED, r->new_generation(),
             r->new_shards());
        r->set_step("");
        Go(r, R::kRetention,
           absl::StrCat("flipped: generation ", r->new_generation(), " is LIVE with ",
                        r->new_shards(), " shards; generation ", r->old_generation(),
                        " retained (reverse dual-write)"),
           true);
        return;
      case R::kRetention:
        if (!r->complete_requested() &&
            !ReshardMachine::RetentionExpired(ToPlan(*r), now_,
                                              static_cast<double>(
                                                  cfg_.resharding.retain_old_index_hours))) {
          return;
        }
        SetRole(r->index(), r->old_generation(), v1::GENERATION_DROPPED);
        r->set_step("");
        Go(r, R::kCleanup,
           r->complete_requested() ? "completed by the operator"
                                   : "retain_old_index_hours passed",
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
        if (!s_.generations.count(r->new_generation()) ||
            DropGeneration(r, r->new_generation())) {
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
      Flip(r, r->new_generation(), v1::GENERATION_DROPPED, r->old_generation(),
           r->old_shards());
      r->set_step("flipped");
      spdlog::info("reshard {} ({}): rolled back: generation {} is LIVE again", r->id(),
                   r->index(), r->old_generation());
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

  const ClusterState& s_;
  Change* c_;
  const CoordinatorConfig& cfg_;
  const int64_t now_;
  const bool acks_ready_;
  WorkerRegistry& reg_;
  const uint64_t new_epoch_;
  const std::set<std::string> failed_;
  std::atomic<uint64_t>* backfilled_;
};

// Documents and bytes of one generation (one replica), from the node reports:
// per shard the largest count any owner reported.
std::pair<uint64_t, uint64_t> GenerationSize(const v1::GenerationRoute& g,
                                             const std::map<std::string, NodeHealth>& health,
                                             bool* known) {
  uint64_t docs = 0, bytes = 0;
  *known = false;
  for (const auto& route : g.routes()) {
    uint64_t d = 0, b = 0;
    for (const auto& o : route.owners()) {
      for (const auto& n : o.nodes()) {
        auto h = health.find(n);
        if (h == health.end()) continue;
        auto it = h->second.shards.find({g.index(), g.generation(), route.shard()});
        if (it == h->second.shards.end()) continue;
        *known = true;
        d = std::max(d, it->second.first);
        b = std::max(b, it->second.second);
      }
    }
    docs += d;
    bytes += b;
  }
  return {docs, bytes};
}

}  // namespace

void ReshardRunner::Tick() {
  const int64_t now = c_->clock_->NowMs();
  const bool acks_ready = absl::Milliseconds(now - c_->started_ms_) >=
                          c_->config_.worker_lease_ttl + c_->config_.max_clock_drift;
  auto st = c_->Mutate([&](const ClusterState& s, Change* ch) {
    ReshardStepper(s, ch, c_->config_, now, acks_ready, c_->registry_, &backfilled_).Run();
    return absl::OkStatus();
  });
  if (!st.ok()) spdlog::error("reshard runner: {}", std::string(st.status().message()));
}

absl::StatusOr<v1::ReshardStartResponse> ReshardRunner::Start(const v1::ReshardStartRequest& req) {
  const CoordinatorConfig& cfg = c_->config_;
  if (req.index().empty()) return absl::InvalidArgumentError("index: must not be empty");
  if (req.new_shards() == 0) return absl::InvalidArgumentError("new_shards: must be >= 1");
  if (req.new_shards() > kMaxShards) {
    return absl::InvalidArgumentError(
        absl::StrCat("new_shards: ", req.new_shards(), " is over the limit of ", kMaxShards));
  }
  if (!req.schedule_window().empty()) {
    if (auto w = PlanWindows(req.schedule_window(), cfg); !w.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("schedule_window: ", w.status().message()));
    }
  }
  const int64_t now = c_->clock_->NowMs();
  v1::ReshardStartResponse resp;
  std::vector<std::string> warnings;
  MIROIR_RETURN_IF_ERROR(
      c_->Mutate([&](const ClusterState& s, Change* ch) -> absl::Status {
          warnings.clear();
          const v1::Index* ix = s.FindIndex(req.index());
          if (ix == nullptr) {
            return absl::NotFoundError(absl::StrCat("index: unknown index '", req.index(), "'"));
          }
          std::vector<ReshardPlan> plans;
          for (const auto& [id, r] : s.reshards) plans.push_back(ToPlan(r));
          bool move_active = false;
          for (const auto& [id, m] : s.moves) {
            move_active = move_active || (m.index() == ix->name() &&
                                          !MoveMachine::IsTerminal(m.state()));
          }
          ReshardStartRequest gate{ix->name(), ix->shards(), req.new_shards(), req.force()};
          // The window gate: an explicit window replaces resharding.allowed_windows.
          CoordinatorConfig gate_cfg = cfg;
          if (!req.schedule_window().empty()) {
            gate_cfg.resharding.allowed_windows = {req.schedule_window()};
          }
          std::vector<std::string> gate_warnings;
          if (auto g =
                  CheckReshardStart(gate, gate_cfg, plans, move_active, now, &gate_warnings);
              !g.ok()) {
            if (g.code() == absl::StatusCode::kInvalidArgument &&
                absl::StartsWith(g.message(), "shards:")) {
              return absl::InvalidArgumentError(
                  absl::StrCat("new_shards", g.message().substr(6)));
            }
            return g;
          }
          warnings = gate_warnings;
          // The estimate (DESIGN §7).
          const v1::GenerationRoute& live = s.generations.at(ix->live_generation());
          bool known = false;
          auto [docs, bytes] = GenerationSize(live, c_->health_, &known);
          v1::ReshardEstimate* est = resp.mutable_estimate();
          est->set_old_shards(ix->shards());
          est->set_new_shards(req.new_shards());
          est->set_documents(docs);
          est->set_bytes(bytes);
          est->set_stats_known(known);
          est->set_rf(ix->rf());
          est->set_groups(static_cast<uint32_t>(s.group_order.size()));
          const uint64_t throttle =
              req.throttle_docs_per_s() ? req.throttle_docs_per_s() : cfg.resharding.throttle_docs_per_sec;
          double dps = static_cast<double>(throttle);
          if (throttle == 0) {
            dps = kAssumedDocsPerS;
            warnings.push_back(absl::StrCat("unthrottled: the estimate assumes ",
                                            static_cast<uint64_t>(kAssumedDocsPerS),
                                            " documents/s"));
          }
          if (!known) warnings.push_back("no node stats reported yet: documents and bytes unknown");
          ReshardEstimateInput in{docs, bytes, ix->rf(),
                                  std::max<uint32_t>(1, est->groups()), dps, 0};
          if (auto e = EstimateReshard(in); e.ok()) {
            est->set_storage_peak_bytes(e->storage_peak_bytes);
            est->set_peak_node_writes_per_s(e->peak_node_writes_per_s);
            est->set_duration_s(e->duration_s);
          }
          est->set_backfill_docs_per_s(dps);
          if (req.dry_run()) return absl::OkStatus();
          v1::ReshardRecord r;
          r.set_id(ch->AllocId(s));
          r.set_index(ix->name());
          r.set_old_shards(ix->shards());
          r.set_new_shards(req.new_shards());
          r.set_old_generation(ix->live_generation());
          r.set_new_generation(ch->AllocId(s));
          r.set_state(std::string(ReshardStateName(R::kShadow)));
          r.set_failed_from(std::string(ReshardStateName(R::kShadow)));
          r.set_state_since_ms(now);
          r.set_started_ms(now);
          r.set_force(req.force());
          for (const auto& w : gate_warnings) r.add_warnings(w);
          r.set_throttle_docs_per_s(throttle);
          r.set_schedule_window(req.schedule_window());
          v1::Event e;
          e.set_time_ms(now);
          e.set_plan_id(r.id());
          e.set_from("");
          e.set_to("shadow");
          e.set_reason(absl::StrCat("reshard of ", ix->name(), " from ", ix->shards(), " to ",
                                    req.new_shards(), " shards started",
                                    gate_warnings.empty() ? "" : "; ",
                                    absl::StrJoin(gate_warnings, "; ")));
          ch->events.push_back(e);
          ch->reshards[r.id()] = r;
          *resp.mutable_reshard() = r;
          return absl::OkStatus();
        }).status());
  for (const auto& w : warnings) {
    resp.add_warnings(w);
    if (!req.dry_run()) spdlog::warn("reshard of {}: {}", req.index(), w);
  }
  if (!req.dry_run()) {
    spdlog::info("reshard {} of {} started: {} -> {} shards", resp.reshard().id(),
                 resp.reshard().index(), resp.reshard().old_shards(), resp.reshard().new_shards());
    c_->Wake();
  }
  return resp;
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Status(const std::string& index) {
  uint64_t id = 0;
  v1::ReshardStatusResponse resp;
  {
    absl::ReaderMutexLock l(&c_->mu_);
    const ClusterState& s = c_->state_;
    const v1::Index* ix = s.FindIndex(index);
    if (ix == nullptr) return absl::NotFoundError(absl::StrCat("index: unknown index '", index, "'"));
    const v1::ReshardRecord* r = Newest(s, ix->name());
    if (r == nullptr) {
      return absl::NotFoundError(absl::StrCat("index: no reshard of index '", ix->name(), "'"));
    }
    *resp.mutable_reshard() = *r;
    id = r->id();
    auto live = s.generations.find(r->old_generation());
    if (live != s.generations.end()) {
      bool known = false;
      auto [docs, bytes] = GenerationSize(live->second, c_->health_, &known);
      resp.mutable_estimate()->set_documents(docs);
      resp.mutable_estimate()->set_bytes(bytes);
      resp.mutable_estimate()->set_stats_known(known);
    }
  }
  // Internal bookkeeping stays out of the answer.
  for (auto& sh : *resp.mutable_reshard()->mutable_dst_positions()) sh.clear_watermarks();
  auto events = c_->store_->PlanEvents(id);
  if (events.ok()) {
    for (const auto& bytes : *events) resp.add_events()->ParseFromString(bytes);
  }
  return resp;
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Operate(const std::string& index,
                                                                  const RecordFn& fn) {
  const int64_t now = c_->clock_->NowMs();
  MIROIR_RETURN_IF_ERROR(
      c_->Mutate([&](const ClusterState& s, Change* ch) -> absl::Status {
          const v1::Index* ix = s.FindIndex(index);
          if (ix == nullptr) {
            return absl::NotFoundError(absl::StrCat("index: unknown index '", index, "'"));
          }
          const v1::ReshardRecord* cur = Newest(s, ix->name());
          if (cur == nullptr) {
            return absl::NotFoundError(
                absl::StrCat("index: no reshard of index '", ix->name(), "'"));
          }
          v1::ReshardRecord r = *cur;
          const std::string before = r.state();
          MIROIR_RETURN_IF_ERROR(fn(&r, now));
          if (r.state() != before) {
            v1::Event e;
            e.set_time_ms(now);
            e.set_plan_id(r.id());
            e.set_from(before);
            e.set_to(r.state());
            e.set_reason(r.message());
            ch->events.push_back(e);
          }
          ch->reshards[r.id()] = r;
          return absl::OkStatus();
        }).status());
  c_->Wake();
  return Status(index);
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Abort(const std::string& index) {
  return Operate(index, [](v1::ReshardRecord* r, int64_t now) -> absl::Status {
    ReshardPlan p = ToPlan(*r);
    if (p.state == R::kAborting) return absl::OkStatus();
    if (!ReshardMachine::CanAbort(p)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "reshard ", r->id(), " of ", r->index(), " is in state ", r->state(),
          ReshardMachine::IsSwapped(p) ? "; after the swap use `reshard rollback`" : "",
          ": abort is possible only before the swap"));
    }
    auto e = ReshardMachine::Transition(&p, R::kAborting, "aborted by the operator", now, 0);
    if (!e.ok()) return e.status();
    FromPlan(p, r);
    r->set_step("unroute");
    r->set_message("aborted by the operator");
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Rollback(const std::string& index) {
  return Operate(index, [](v1::ReshardRecord* r, int64_t now) -> absl::Status {
    ReshardPlan p = ToPlan(*r);
    if (p.state == R::kRollingBack) return absl::OkStatus();
    if (!ReshardMachine::CanRollback(p)) {
      return absl::FailedPreconditionError(
          absl::StrCat("reshard ", r->id(), " of ", r->index(), " is in state ", r->state(),
                       ReshardMachine::CanAbort(p) ? "; before the swap use `reshard abort`" : "",
                       ": rollback is possible only in retention"));
    }
    auto e = ReshardMachine::Transition(&p, R::kRollingBack, "rollback by the operator", now, 0);
    if (!e.ok()) return e.status();
    FromPlan(p, r);
    r->set_step("start");
    r->set_message("rollback by the operator");
    r->set_stall_retries(0);
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Complete(const std::string& index) {
  return Operate(index, [](v1::ReshardRecord* r, int64_t) -> absl::Status {
    ReshardPlan p = ToPlan(*r);
    if (!ReshardMachine::CanComplete(p)) {
      return absl::FailedPreconditionError(
          absl::StrCat("reshard ", r->id(), " of ", r->index(), " is in state ", r->state(),
                       ": complete is possible only in retention"));
    }
    r->set_complete_requested(true);
    return absl::OkStatus();
  });
}

uint64_t ReshardRunner::InProgress() const {
  absl::ReaderMutexLock l(&c_->mu_);
  uint64_t n = 0;
  for (const auto& [id, r] : c_->state_.reshards) n += !Ended(r) && StateOf(r) != R::kFailed;
  return n;
}

int ReshardRunner::Phase() const {
  absl::ReaderMutexLock l(&c_->mu_);
  int phase = 0;
  for (const auto& [id, r] : c_->state_.reshards) {
    if (!Ended(r)) phase = ReshardPhase(StateOf(r));
  }
  return phase;
}

}  // namespace miroir::coordinator
