#include "coordinator/reshard_stepper.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/reshard_names.h"
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
  // Failed for good because its node's change sequence is gone.
  bool IncarnationChanged(const TaskRecord* t) const {
    return FailedTask(t) && t->failure == v1::TASK_FAILURE_INCARNATION_CHANGED;
  }
  // The entries of `shards` by shard number.
  static std::map<uint32_t, v1::ReshardShard*> ByShard(
      google::protobuf::RepeatedPtrField<v1::ReshardShard>* shards) {
    std::map<uint32_t, v1::ReshardShard*> out;
    for (auto& sh : *shards) out[sh.shard()] = &sh;
    return out;
  }
  // Failed for good (a retryable failure within the budget is leased again).
  bool FailedTask(const TaskRecord* t) const {
    return t && t->FailedForGood(cfg_.migration.task_retries);
  }
  void Consume(uint64_t* id) {
    if (*id != 0) c_->deleted_tasks.insert(*id);
    *id = 0;
  }
  // Records a shard's finished pass (the documents it copied; the pass done).
  void Credit(v1::ReshardRecord* r, v1::ReshardShard* sh, uint64_t documents) {
    sh->set_remaining(documents);
    sh->set_documents(sh->documents() + documents);
    r->set_documents_backfilled(r->documents_backfilled() + documents);
    out_->documents_backfilled += documents;
    sh->set_passed(true);
  }
  void DropTasks(v1::ReshardRecord* r) {
    for (auto& sh : *r->mutable_shards()) {
      DropTask(&sh);
    }
    for (auto& sh : *r->mutable_dst_positions()) {
      DropTask(&sh);
    }
    DropNodeTasks(r);
    uint64_t v = r->verify_task_id();
    Consume(&v);
    r->set_verify_task_id(0);
  }

  void DropNodeTasks(v1::ReshardRecord* r) {
    for (auto& nt : *r->mutable_node_tasks()) {
      uint64_t id = nt.task_id();
      Consume(&id);
    }
    r->clear_node_tasks();
  }

  // A node-batched task of the swap, recorded in node_tasks: a FENCE of shards
  // of `gen` on `node` (the caller lists them in its batch), or the final delta
  // `node` is the source of. One per node, so the swap pays a round trip per
  // node, not per shard (issue 19).
  v1::Task& NewNodeTask(v1::ReshardRecord* r, v1::TaskKind kind, uint64_t gen,
                        const std::string& node, uint64_t epoch) {
    const bool fence = kind == v1::TASK_FENCE;
    const uint64_t id = NewTask(*r, kind, gen, 0, fence ? Strings{} : Strings{node},
                                fence ? Strings{node} : Strings{}, epoch);
    v1::ReshardNodeTask* nt = r->add_node_tasks();
    nt->set_node(node);
    nt->set_generation(gen);
    nt->set_task_id(id);
    return c_->tasks[id];
  }

  // Whether every node task is done; fails the reshard (naming the node) when one
  // failed for good. False while any runs or after the failure (check the state).
  // With `incarnation_change_ok`, a task that failed because its node's change
  // sequence is gone counts as finished (the caller copies its shards again).
  bool NodeTasksDone(v1::ReshardRecord* r, bool incarnation_change_ok = false) {
    bool done = true;
    for (const auto& nt : r->node_tasks()) {
      const TaskRecord* t = TaskOf(nt.task_id());
      if (incarnation_change_ok && IncarnationChanged(t)) continue;
      if (FailedTask(t)) {
        Fail(r, absl::StrCat(v1::TaskKind_Name(t->task.kind()), " on node ", nt.node(),
                             " failed: ", t->error));
        return false;
      }
      done = done && Done(t);
    }
    return done;
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

  // The swap's final delta: every shard copies (W, F] from its fenced sources,
  // one batched task per source node (a shard whose source has not moved since W
  // needs nothing). True when every shard is done; false while running or failed
  // (check the state).
  bool RunFinalDelta(v1::ReshardRecord* r) {
    if (r->node_tasks().empty()) {
      std::map<std::string, std::vector<v1::BatchShard>> by_node;
      for (auto& sh : *r->mutable_shards()) DropTask(&sh);  // per-shard, from an older record
      for (const auto& sh : r->shards()) {
        if (sh.passed()) continue;
        for (const auto& n :
             cutover::FencedSources(sh.fences(), {sh.sources().begin(), sh.sources().end()})) {
          const v1::Watermark* w = cutover::MarkOf(sh.watermarks(), n);
          const v1::Watermark* f = cutover::MarkOf(sh.fences(), n);
          if (w == nullptr || f == nullptr) continue;  // Fence() kept only current ones
          if (w->incarnation() == f->incarnation() && w->seq() >= f->seq()) continue;
          v1::BatchShard b;
          b.set_shard(sh.shard());
          *b.mutable_from() = *w;
          *b.mutable_upto() = *f;
          by_node[n].push_back(std::move(b));
        }
      }
      if (!by_node.empty()) {
        for (auto& [node, batch] : by_node) {
          v1::Task& t =
              NewNodeTask(r, v1::TASK_RESHARD_DELTA, r->src_generation(), node, r->fence_epoch());
          for (auto& b : batch) *t.add_node_shards() = std::move(b);
        }
        return false;
      }
    } else if (!NodeTasksDone(r)) {
      return false;
    }
    std::map<uint32_t, uint64_t> copied;
    for (const auto& nt : r->node_tasks()) {
      for (const auto& b : TaskOf(nt.task_id())->result.node_shards())
        copied[b.shard()] += b.documents();
    }
    DropNodeTasks(r);
    for (auto& sh : *r->mutable_shards()) {
      if (sh.passed()) continue;
      Credit(r, &sh, copied[sh.shard()]);
    }
    return true;
  }

  // The shard `shard` is copied again from the backfill (its source's sequence is
  // gone, or a W is missing).
  void CopyAgain(v1::ReshardRecord* r, uint32_t shard, const std::string& why) {
    for (auto& sh : *r->mutable_shards()) {
      if (sh.shard() != shard || !sh.copied()) continue;
      out_->Warn(absl::StrCat("reshard ", r->id(), " shard ", shard, ": ", why,
                              "; the shard is copied again"));
      DropTask(&sh);
      sh.set_copied(false);
      sh.set_passed(false);
      sh.clear_watermarks();
    }
  }

  // Catch-up in rounds: each round is one RESHARD_DELTA per source node over
  // every copied shard it sources, from each shard's W up to its position when
  // the task starts (one pipelined round trip per node and page, so a round costs
  // about the same at any S). A round ends when every node's task is done; it
  // converges when JudgeCatchUpRound says the final delta fits the stall budget
  // (or the round was small, or the cutover was forced). True when converged;
  // false while running or when the reshard failed (check the state).
  bool RunCatchUp(v1::ReshardRecord* r) {
    if (r->catch_up_since_ms() == 0) r->set_catch_up_since_ms(now_);
    if (r->round_started_ms() == 0) r->set_round_started_ms(now_);
    if (!RunBackfills(r)) return false;
    if (!r->node_tasks().empty()) {
      if (!NodeTasksDone(r, /*incarnation_change_ok=*/true)) return false;
      std::map<uint32_t, uint64_t> copied;  // shard -> documents this round
      std::set<uint32_t> again;
      const auto by_shard = ByShard(r->mutable_shards());
      for (const auto& nt : r->node_tasks()) {
        const TaskRecord* t = TaskOf(nt.task_id());
        if (!Done(t)) {  // its incarnation changed: every shard it sources is copied again
          for (const auto& b : t->task.node_shards()) again.insert(b.shard());
          continue;
        }
        for (const auto& b : t->result.node_shards()) {
          copied[b.shard()] += b.documents();
          auto sh = by_shard.find(b.shard());
          if (sh == by_shard.end()) continue;
          for (auto& w : *sh->second->mutable_watermarks()) {
            if (w.node() == nt.node()) w = b.watermark();
          }
        }
      }
      for (uint32_t shard : again) {
        CopyAgain(r, shard, absl::StrCat("a source's change sequence is gone"));
      }
      DropNodeTasks(r);
      bool all = true;
      uint64_t remaining = 0;
      for (auto& sh : *r->mutable_shards()) {
        auto c = copied.find(sh.shard());
        if (sh.copied() && c != copied.end()) Credit(r, &sh, c->second);
        all = all && sh.copied() && sh.passed();
        remaining += sh.copied() ? sh.remaining() : 0;
      }
      if (all) {
        // Converged (the final delta fits in the stall budget), or the operator
        // forced the swap (`reshard cutover --force`): this round is the last.
        CatchUpRound round;
        round.documents = remaining;
        round.started_ms = r->round_started_ms();
        round.now_ms = now_;
        round.previous_rate = r->copy_rate_docs_per_s();
        round.catch_up_since_ms = r->catch_up_since_ms();
        round.forced = r->force_cutover();
        const CatchUpVerdict v =
            JudgeCatchUpRound(round, *r, cfg_.migration.catch_up_threshold,
                              cfg_.migration.max_write_stall, cfg_.migration.catch_up_max);
        r->set_remaining(remaining);
        r->set_catch_up_passes(r->catch_up_passes() + 1);
        r->set_last_round_ms(v.round_ms);
        r->set_copy_rate_docs_per_s(v.copy_rate_docs_per_s);
        r->set_estimated_final_delta_ms(v.estimated_final_delta_ms);
        if (v.not_converging && !r->not_converging()) {
          // Once, as an event of the state it stays in: `reshard status` and
          // `reshard watch` show it, and the log.
          out_->Warn(absl::StrCat("reshard ", r->id(), " (", r->index(), "): ", v.message));
          v1::Event e;
          e.set_time_ms(now_);
          e.set_plan_id(r->id());
          e.set_from(ReshardStateName(r->state()));
          e.set_to(ReshardStateName(r->state()));
          e.set_reason(v.message);
          c_->events.push_back(std::move(e));
        }
        r->set_not_converging(v.not_converging);
        StartPass(r);
        if (v.converged) return true;
        r->set_message(v.message);
      } else {
        StartPass(r);  // shards still backfilling join the next round
      }
    }
    // The next round: every copied shard from W of each of its sources (a per-shard
    // pass of a record from before the rounds were batched is dropped).
    for (auto& sh : *r->mutable_shards()) {
      if (sh.copied()) DropTask(&sh);
    }
    std::map<std::string, std::vector<v1::BatchShard>> by_node;
    std::set<uint32_t> missing;
    for (const auto& sh : r->shards()) {
      if (!sh.copied()) continue;
      for (const auto& n : sh.sources()) {
        const v1::Watermark* w = cutover::MarkOf(sh.watermarks(), n);
        if (w == nullptr) {
          missing.insert(sh.shard());
          continue;
        }
        v1::BatchShard b;
        b.set_shard(sh.shard());
        *b.mutable_from() = *w;
        by_node[n].push_back(std::move(b));
      }
    }
    for (uint32_t shard : missing) CopyAgain(r, shard, "no W for one of its sources");
    for (auto& [node, batch] : by_node) {
      v1::Task& t = NewNodeTask(r, v1::TASK_RESHARD_DELTA, r->src_generation(), node, s_.epoch);
      for (auto& b : batch) {
        if (!missing.count(b.shard())) *t.add_node_shards() = std::move(b);
      }
    }
    return false;
  }

  static std::string Converged(const v1::ReshardRecord& r) {
    return absl::StrCat(r.force_cutover() ? "cutover forced by the operator" : "catch-up converged",
                        " (", r.remaining(), " left)");
  }

  void StartPass(v1::ReshardRecord* r) {
    for (auto& sh : *r->mutable_shards()) sh.set_passed(false);
    r->set_round_started_ms(now_);
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

  // One FENCE task per node and generation: every live shard the node owns at the
  // fence epoch, every new shard's position (epoch 0). Drops what the swap held
  // before (per-shard tasks of an older record included).
  void IssueFences(v1::ReshardRecord* r) {
    DropNodeTasks(r);
    for (auto& sh : *r->mutable_shards()) DropTask(&sh);
    std::map<std::string, std::vector<uint32_t>> live;  // node -> its live shards
    const v1::GenerationRoute& src = Gen(r->src_generation());
    for (const auto& sh : r->shards()) {
      for (const auto& n : AllOwners(src.routes(static_cast<int>(sh.shard())), failed_)) {
        live[n].push_back(sh.shard());
      }
    }
    std::map<std::string, std::vector<uint32_t>> positions;  // node -> its new shards
    for (auto& p : *r->mutable_dst_positions()) DropTask(&p);
    r->clear_dst_positions();
    for (const auto& route : Gen(r->dst_generation()).routes()) {
      r->add_dst_positions()->set_shard(route.shard());
      for (const auto& n : AllOwners(route, failed_)) positions[n].push_back(route.shard());
    }
    for (const auto& [node, shards] : live) {
      v1::Task& t = NewNodeTask(r, v1::TASK_FENCE, r->src_generation(), node, r->fence_epoch());
      for (uint32_t sh : shards) t.add_node_shards()->set_shard(sh);
    }
    for (const auto& [node, shards] : positions) {
      v1::Task& t = NewNodeTask(r, v1::TASK_FENCE, r->dst_generation(), node, 0);
      for (uint32_t sh : shards) t.add_node_shards()->set_shard(sh);
    }
  }

  // The swap's fence step: FENCE every owner of every source shard at the fence
  // epoch (F per node) and read the position of every destination shard's owners
  // (a FENCE at epoch 0 raises nothing: W for a later rollback), one batched task
  // per node and generation, all at once. Returns true when done and enough
  // sources are fenced; on too few, goes back to `back_to`.
  bool Fence(v1::ReshardRecord* r, R back_to) {
    if (r->step() == v1::RESHARD_STEP_PAUSING) {
      if (!Acked(*r) &&
          absl::Milliseconds(now_ - r->paused_at_ms()) < cfg_.migration.drain_timeout) {
        return false;
      }
      SetStep(r, v1::RESHARD_STEP_FENCING);
      IssueFences(r);
      return false;
    }
    if (r->node_tasks().empty()) {
      // Fencing with no task: a swap recorded before the fences were batched per
      // node (its per-shard tasks are dropped), or its tasks were lost. Fence again.
      IssueFences(r);
      return false;
    }
    if (!NodeTasksDone(r)) return false;
    for (auto& sh : *r->mutable_shards()) sh.clear_fences();
    for (auto& p : *r->mutable_dst_positions()) {
      p.clear_watermarks();
      p.clear_sources();
    }
    const auto live_of = ByShard(r->mutable_shards());
    const auto position_of = ByShard(r->mutable_dst_positions());
    for (const auto& nt : r->node_tasks()) {
      const TaskRecord* t = TaskOf(nt.task_id());
      const bool is_live = nt.generation() == r->src_generation();
      auto& of = is_live ? live_of : position_of;
      for (const auto& b : t->result.node_shards()) {
        auto it = of.find(b.shard());
        if (it == of.end()) continue;
        *(is_live ? it->second->add_fences() : it->second->add_watermarks()) = b.watermark();
      }
      if (is_live) continue;
      for (const auto& n : t->result.unreachable()) {
        for (const auto& b : t->task.node_shards()) {
          if (auto it = of.find(b.shard()); it != of.end()) it->second->add_sources(n);
        }
      }
    }
    DropNodeTasks(r);
    uint32_t short_shards = 0;
    for (auto& sh : *r->mutable_shards()) {
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
    r->set_catch_up_since_ms(0);  // a rollback's catch-up counts from its own start
    r->set_not_converging(false);
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
          const v1::Watermark* w = pos ? cutover::MarkOf(pos->watermarks(), n) : nullptr;
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
