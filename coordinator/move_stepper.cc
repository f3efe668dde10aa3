#include "coordinator/move_stepper.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/route_sets.h"
#include "coordinator/cutover.h"
#include "coordinator/move_gates.h"
#include "coordinator/move_machine.h"
#include "coordinator/node_rejoin.h"
#include "coordinator/recovery_passes.h"
#include "coordinator/routing_tables.h"
#include "coordinator/schedule_window.h"

namespace miroir::coordinator {

namespace {

// Non-publishing transitions one move may take in one tick (bounds the loop).
constexpr int kMaxStepsPerTick = 4;

using Strings = std::vector<std::string>;

Strings Vec(const google::protobuf::RepeatedPtrField<std::string>& f) {
  return {f.begin(), f.end()};
}

Strings Minus(const Strings& a, const Strings& b) {
  Strings out;
  for (const auto& x : a) {
    if (std::find(b.begin(), b.end(), x) == b.end()) out.push_back(x);
  }
  return out;
}

Strings Union(const Strings& a, const Strings& b) {
  Strings out = a;
  for (const auto& x : b) {
    if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
  }
  return out;
}

using cutover::WithoutFailed;

bool IsReconcilingPlan(const v1::Plan& p) {
  return p.kind() == v1::PLAN_REMOVE_NODE || p.kind() == v1::PLAN_REMOVE_GROUP ||
         p.skip_delta_pass();
}

// One tick's worth of decisions over a state snapshot, written into a Change.
class MoveTick : StepContext {
 public:
  MoveTick(const ClusterState& s, Change* c, const CoordinatorConfig& cfg, const StepInput& in,
           StepOutput* out)
      : StepContext(s, c, cfg, in, out) {
    for (const auto& [id, m] : s_.moves) {
      if (IsPausedState(m.state())) CountCutover(m);
    }
  }

  void Run() {
    for (const auto& [pid, plan] : s_.plans) {
      const bool paused = plan.state() == v1::PLAN_PAUSED;
      if (plan.state() != v1::PLAN_RUNNING && plan.state() != v1::PLAN_ABORTING && !paused) {
        continue;
      }
      for (const v1::Move* m : s_.PlanMoves(pid)) {
        if (MoveMachine::IsTerminal(m->state())) continue;
        // A paused plan holds its moves where they are, except a cutover under
        // way: it holds writes, so it finishes (to `active`) and stops there.
        if (paused && !IsPausedState(m->state())) continue;
        v1::Move copy = *m;
        // A transition that publishes nothing (e.g. paused -> final_delta) runs the new
        // state's entry action in the same tick: a cutover holding writes does not wait
        // a tick per step. One that publishes waits for the workers' acks anyway.
        for (int steps = 0; steps < kMaxStepsPerTick; ++steps) {
          const v1::MoveState before = copy.state();
          const bool bumped = c_->bump_epoch;
          Step(plan, &copy);
          if (copy.state() == before || MoveMachine::IsTerminal(copy.state()) ||
              (c_->bump_epoch && !bumped) || copy.wait_epoch() == new_epoch_) {
            break;
          }
        }
        if (copy.SerializeAsString() != m->SerializeAsString()) c_->moves[copy.id()] = copy;
      }
    }
    RecomputeRoutes();
    FinishPlans();
    SweepLooseTasks();
  }

 private:
  void CountCutover(const v1::Move& m) {
    for (const auto& n : MoveMachine::CutoverNodes(m)) ++cutovers_[n];
  }

  // Starts the cutover of `m` (publish E2 holding its writes) unless a node of it
  // already carries max_cutovers_per_node cutovers; then says why it waits.
  bool StartCutover(v1::Move* m, const std::string& reason) {
    if (!MoveMachine::MayStartCutover(*m, cutovers_, cfg_.migration.max_cutovers_per_node)) {
      m->set_message(
          absl::StrCat("waiting to pause: another cutover holds writes on its nodes "
                       "(max_cutovers_per_node ",
                       cfg_.migration.max_cutovers_per_node, ")"));
      return false;
    }
    m->set_paused_at_ms(now_);
    m->set_fence_epoch(new_epoch_);
    TransitionTo(m, v1::MOVE_PAUSED, reason, true);
    CountCutover(*m);
    return true;
  }

  // Creates the task serving the move's current state.
  void NewTask(v1::Move* m, v1::TaskKind kind, const Strings& sources, const Strings& targets,
               uint64_t epoch) {
    v1::Task t =
        NewShardTask(s_, c_, kind, s_.generations.at(m->generation()), m->shard(), epoch, sources,
                     targets, static_cast<uint32_t>(cfg_.migration.backfill_batch_size));
    const v1::Plan& plan = s_.plans.at(m->plan_id());
    t.set_throttle_docs_per_s(plan.throttle_docs_per_s());
    t.set_move_id(m->id());
    if (kind == v1::TASK_CATCH_UP || kind == v1::TASK_FINAL_DELTA) {
      for (const auto& w : m->watermarks()) *t.mutable_checkpoint()->add_watermarks() = w;
    }
    if (kind == v1::TASK_FINAL_DELTA) {
      for (const auto& f : m->fences()) *t.add_upto() = f;
    }
    if (kind == v1::TASK_RECONCILE) t.set_repair(true);
    // The copies that end the move's copying, and cleanup's delete, re-read the
    // joining nodes' incarnations (DESIGN §6).
    if (kind == v1::TASK_FINAL_DELTA || (kind == v1::TASK_BACKFILL && plan.skip_delta_pass()) ||
        (kind == v1::TASK_CLEANUP && m->state() == v1::MOVE_CLEANUP)) {
      for (const auto& j : m->joining()) {
        if (!failed_.count(j.node())) *t.add_joining() = j;
      }
    }
    c_->tasks[t.id()] = t;
    m->set_task_id(t.id());
  }

  // A rejoin's prepare first copies what only the rejoining node may hold (what
  // changed there after its sync point) into the shard's current owners, before
  // the wipe (DESIGN §6, Node rejoin).
  void AddRescue(const std::string& node, v1::Move* m) {
    auto n = s_.nodes.find(node);
    auto g = s_.generations.find(m->generation());
    if (n == s_.nodes.end() || g == s_.generations.end() ||
        m->shard() >= static_cast<uint32_t>(g->second.routes_size())) {
      return;
    }
    v1::Watermark from = RescueFrom(n->second, m->generation(), m->shard());
    if (from.node().empty()) return;
    v1::Task& t = c_->tasks[m->task_id()];
    for (const auto& grp : g->second.routes(static_cast<int>(m->shard())).owners()) {
      for (const auto& o : grp.nodes()) {
        if (o != node && !failed_.count(o)) t.add_rescue_into(o);
      }
    }
    if (t.rescue_into().empty()) return;
    *t.mutable_rescue_from() = from;
  }

  // Transition; `publishes` = the route of the shard changes (new epoch, acks awaited).
  bool TransitionTo(v1::Move* m, v1::MoveState to, const std::string& reason, bool publishes) {
    DropTask(m);
    auto e = MoveMachine::Transition(m, to, reason, now_, publishes ? new_epoch_ : 0);
    if (!e.ok()) {
      out_->Error(std::string(e.status().message()));
      return false;
    }
    if (publishes) {
      c_->bump_epoch = true;
      m->set_wait_epoch(new_epoch_);
      touched_.insert({m->generation(), m->shard()});
    }
    out_->Info(absl::StrCat("move ", m->id(), " (plan ", m->plan_id(), ", ", m->index(), " shard ",
                            m->shard(), " ", m->group(), "): ", e->from(), " -> ", e->to(), ": ",
                            reason));
    c_->events.push_back(*e);
    return true;
  }

  bool WindowOpen(const v1::Plan& plan) const {
    if (plan.force()) return true;
    auto windows = PlanWindows(plan.schedule_window(), cfg_);
    return !windows.ok() || InsideAnyWindow(*windows, now_);
  }

  void FailMove(v1::Move* m, const std::string& why) {
    m->set_message(why);
    TransitionTo(m, v1::MOVE_FAILED, why, IsDualWriteState(m->state()));
    m->set_message(why);
  }

  // Handles a task that failed for good. Returns true if handled.
  bool HandleFailedTask(v1::Move* m, const TaskRecord* t) {
    // A retryable failure within the retry budget is leased again after its
    // backoff; the move waits for it.
    if (!t || !t->FailedForGood(cfg_.migration.task_retries)) return false;
    FailMove(m, absl::StrCat(v1::TaskKind_Name(t->task.kind()), " failed: ", t->error));
    return true;
  }

  // Acts on a re-read of the joining nodes' incarnations: when one changed, sends
  // `m` back to prepare (before active: publishing an epoch that unpauses its
  // writes and takes J out of the write set; the new prepare fences at it) or to
  // reconciling (after active). Returns whether it did.
  bool JoiningChanged(v1::Move* m,
                      const google::protobuf::RepeatedPtrField<v1::Watermark>& reread) {
    MoveMachine::JoiningCheck c = MoveMachine::CheckJoining(*m, reread);
    if (c.changed.empty()) return false;
    if (c.next == v1::MOVE_PREPARE) {
      if (TransitionTo(m, v1::MOVE_PREPARE, c.reason, true)) m->set_fence_epoch(new_epoch_);
    } else {
      m->clear_joining();
      for (const auto& j : c.joining) *m->add_joining() = j;
      TransitionTo(m, c.next, c.reason, false);
    }
    return true;
  }

  void StallCheck(v1::Move* m) {
    if (!MoveMachine::StallExceeded(*m, now_, cfg_.migration)) return;
    if (MoveMachine::MayRetryAfterStall(*m, cfg_.migration)) {
      m->set_stall_retries(m->stall_retries() + 1);
      m->set_paused_at_ms(0);
      m->clear_fences();
      TransitionTo(m, v1::MOVE_CATCHING_UP,
                   absl::StrCat("cutover exceeded max_write_stall ",
                                absl::FormatDuration(cfg_.migration.max_write_stall),
                                "; unpaused, retry ", m->stall_retries()),
                   true);
    } else {
      FailMove(m, absl::StrCat("write stall exceeded max_write_stall ",
                               cfg_.migration.max_stall_retries + 1, " times"));
    }
  }

  void Step(const v1::Plan& plan, v1::Move* m) {
    const Strings O = Vec(m->old_owners()), N = Vec(m->new_owners());
    const Strings J = Minus(N, O), L = Minus(O, N);
    const Strings sources = WithoutFailed(Vec(m->sources()), failed_);
    const TaskRecord* t = TaskOf(m->task_id());
    const bool done = t && t->status == TaskRecord::Status::kDone;
    const bool aborting = plan.state() == v1::PLAN_ABORTING;
    if (aborting && m->state() != v1::MOVE_ABORTING && MoveMachine::CanAbort(*m) &&
        m->state() != v1::MOVE_FAILED) {
      TransitionTo(m, m->state() == v1::MOVE_PENDING ? v1::MOVE_ABORTED : v1::MOVE_ABORTING,
                   "plan aborted", m->state() != v1::MOVE_PENDING);
      return;
    }
    switch (m->state()) {
      case v1::MOVE_PENDING:
        TransitionTo(m, v1::MOVE_PREPARE, "plan started", false);
        return;
      case v1::MOVE_PREPARE:
        if (J.empty()) {
          TransitionTo(m, v1::MOVE_DUAL_WRITE, "no joining node to prepare", true);
        } else if (done) {
          // J's incarnations as the fence returned them: the copy belongs to these.
          m->clear_joining();
          for (const auto& f : t->result.watermarks()) {
            if (std::find(J.begin(), J.end(), f.node()) == J.end()) continue;
            v1::Watermark* j = m->add_joining();
            j->set_node(f.node());
            j->set_incarnation(f.incarnation());
          }
          TransitionTo(m, v1::MOVE_DUAL_WRITE, "joining nodes fenced and wiped", true);
        } else if (!HandleFailedTask(m, t) && !t) {
          // E0: the published epoch (leasing keeps it so), below the dual-write
          // epoch E1 the backfill raises J's fence to before copying, so a stale
          // holder of this task cannot wipe what is copied (DESIGN §6).
          m->set_fence_epoch(s_.epoch);
          NewTask(m, v1::TASK_PREPARE, {}, J, s_.epoch);
          if (plan.kind() == v1::PLAN_REJOIN) AddRescue(plan.node_id(), m);
        }
        return;
      case v1::MOVE_DUAL_WRITE:
        if (Acked(*m))
          TransitionTo(m, v1::MOVE_COPYING, "every live worker acked the dual-write epoch", false);
        return;
      case v1::MOVE_COPYING:
        if (J.empty()) {
          TransitionTo(m, v1::MOVE_CATCHING_UP, "nothing to copy", false);
        } else if (done) {
          m->clear_watermarks();
          for (const auto& w : t->result.watermarks()) *m->add_watermarks() = w;
          m->set_documents_copied(t->result.documents());
          if (plan.skip_delta_pass()) {
            if (JoiningChanged(m, t->result.joining())) return;
            if (auto gate = CheckDeltaSkipGate(true, cfg_); !gate.ok()) {
              FailMove(m, std::string(gate.message()));
            } else {
              TransitionTo(m, v1::MOVE_ACTIVE,
                           "backfill done; delta pass skipped (anti-entropy on)", true);
            }
          } else {
            TransitionTo(m, v1::MOVE_CATCHING_UP, "backfill done", false);
          }
        } else if (!HandleFailedTask(m, t) && !t) {
          NewTask(m, v1::TASK_BACKFILL, sources, J, s_.epoch);
        }
        return;
      case v1::MOVE_CATCHING_UP: {
        if (J.empty()) {
          if (WindowOpen(plan)) {
            StartCutover(m, "nothing to catch up");
          } else {
            m->set_message("waiting for a schedule window before pausing writes");
          }
          return;
        }
        if (t && t->status == TaskRecord::Status::kFailed &&
            t->failure == v1::TASK_FAILURE_INCARNATION_CHANGED) {
          m->clear_watermarks();
          TransitionTo(m, v1::MOVE_COPYING, t->error + "; the copy starts over", false);
          return;
        }
        if (HandleFailedTask(m, t)) return;
        if (done) {
          for (const auto& w : t->result.watermarks()) {
            bool found = false;
            for (auto& mine : *m->mutable_watermarks()) {
              if (mine.node() == w.node()) {
                mine = w;
                found = true;
              }
            }
            if (!found) *m->add_watermarks() = w;
          }
          m->set_remaining(t->result.remaining());
          m->set_documents_copied(m->documents_copied() + t->result.remaining());
          auto d = MoveMachine::AfterCatchUpPass(*m, t->result.remaining(), now_, cfg_.migration,
                                                 WindowOpen(plan));
          if (d.next == MoveMachine::CatchUpNext::kPause) {
            // Waiting for another cutover on its nodes runs another pass meanwhile:
            // the delta stays small.
            // A forced cutover says so (the decision's message); else it converged.
            const std::string why =
                d.message.empty()
                    ? absl::StrCat("catch-up converged (", t->result.remaining(), " left)")
                    : d.message;
            if (!StartCutover(m, why)) {
              DropTask(m);
            }
          } else {
            m->set_message(d.message);
            DropTask(m);
          }
          return;
        }
        if (!t) NewTask(m, v1::TASK_CATCH_UP, sources, J, s_.epoch);
        return;
      }
      case v1::MOVE_PAUSED: {
        StallCheck(m);
        if (m->state() != v1::MOVE_PAUSED) return;
        if (HandleFailedTask(m, t)) return;
        if (done) {
          if (JoiningChanged(m, t->result.watermarks())) return;
          m->clear_fences();
          for (const auto& f : t->result.watermarks()) *m->add_fences() = f;
          const uint32_t rf = s_.generations.at(m->generation()).rf();
          const uint32_t good =
              cutover::FencedWithCurrentWatermark(m->watermarks(), m->fences(), &sources);
          const uint32_t need = std::min<uint32_t>(MinSources(rf), sources.size());
          if (!J.empty() && good < need) {
            m->set_paused_at_ms(0);
            m->set_message(absl::StrCat("only ", good, " of ", need,
                                        " old owners fenced with a current watermark"));
            TransitionTo(m, v1::MOVE_CATCHING_UP, m->message(), true);
            return;
          }
          TransitionTo(m, v1::MOVE_FINAL_DELTA,
                       absl::StrCat("fences set on ", m->fences_size(), " nodes"), false);
          return;
        }
        if (!t && (MoveMachine::DrainTimedOut(*m, now_, cfg_.migration) || Acked(*m))) {
          // O ∪ N, plus the sources when they are another group's owners (add-group,
          // restore): the final delta reads them, so they must be fenced too.
          NewTask(m, v1::TASK_FENCE, {}, WithoutFailed(Union(Union(O, N), sources), failed_),
                  m->fence_epoch());
        }
        return;
      }
      case v1::MOVE_FINAL_DELTA: {
        StallCheck(m);
        if (m->state() != v1::MOVE_FINAL_DELTA) return;
        if (HandleFailedTask(m, t)) return;
        if (done && JoiningChanged(m, t->result.joining())) return;
        if (J.empty() || done) {
          if (done) m->set_documents_copied(m->documents_copied() + t->result.documents());
          m->set_stall_ms(static_cast<uint64_t>(now_ - m->paused_at_ms()));
          TransitionTo(m, v1::MOVE_ACTIVE, "final delta copied; owners switched", true);
          return;
        }
        if (!t) {
          NewTask(m, v1::TASK_FINAL_DELTA, cutover::FencedSources(m->fences(), sources), J,
                  m->fence_epoch());
        }
        return;
      }
      case v1::MOVE_ACTIVE:
        if (!Acked(*m)) return;
        if (!WithoutFailed(L, failed_).empty() && IsReconcilingPlan(plan)) {
          TransitionTo(m, v1::MOVE_RECONCILING, "every live worker acked the active epoch", false);
        } else {
          TransitionTo(m, v1::MOVE_CLEANUP, "every live worker acked the active epoch", false);
        }
        return;
      case v1::MOVE_RECONCILING: {
        if (HandleFailedTask(m, t)) return;
        if (done) {
          TransitionTo(
              m, v1::MOVE_CLEANUP,
              absl::StrCat("leaving owners reconciled (", t->result.documents(), " repaired)"),
              false);
          return;
        }
        if (t) return;
        Strings targets = N;
        if (targets.empty()) {
          // Remove-group: reconcile into every remaining group's owners.
          const v1::ShardRoute& r =
              s_.generations.at(m->generation()).routes(static_cast<int>(m->shard()));
          for (const auto& o : r.owners()) {
            if (o.group() != m->group()) targets = Union(targets, Vec(o.nodes()));
          }
        }
        NewTask(m, v1::TASK_RECONCILE, WithoutFailed(L, failed_), WithoutFailed(targets, failed_),
                s_.epoch);
        return;
      }
      case v1::MOVE_CLEANUP: {
        const Strings leaving = WithoutFailed(L, failed_);
        if (HandleFailedTask(m, t)) return;
        if (done && JoiningChanged(m, t->result.joining())) return;
        if (leaving.empty() || done) {
          TransitionTo(m, v1::MOVE_DONE,
                       leaving.empty() ? "no leaving node" : "shard deleted on leaving nodes",
                       false);
          return;
        }
        if (!t && MoveMachine::CleanupDue(*m, now_, cfg_.migration, cfg_.worker_lease_ttl)) {
          NewTask(m, v1::TASK_CLEANUP, {}, leaving, s_.epoch);
        }
        return;
      }
      case v1::MOVE_ABORTING: {
        if (t && t->FailedForGood(cfg_.migration.task_retries)) {
          FailMove(
              m, absl::StrCat("abort: ", v1::TaskKind_Name(t->task.kind()), " failed: ", t->error));
          return;
        }
        if (m->wait_epoch() == 0) {
          // Entered by the operator's abort: publish the epoch routing back to O.
          m->set_wait_epoch(new_epoch_);
          c_->bump_epoch = true;
          touched_.insert({m->generation(), m->shard()});
          return;
        }
        if (!Acked(*m)) return;
        const Strings joining = WithoutFailed(J, failed_);
        const bool reached_dual = m->aborted_from() >= v1::MOVE_DUAL_WRITE;
        const bool restore_like = WithoutFailed(O, failed_).size() < O.size();
        if (joining.empty() || m->aborted_from() == v1::MOVE_PENDING) {
          TransitionTo(m, v1::MOVE_ABORTED, "nothing to undo", false);
          return;
        }
        if (!t) {
          // TODO(issue 17): a move aborted after its pause still holds its F
          // entries and so skips this reconciliation, as it did when they were
          // the marker (kept unchanged here; raised with the lead).
          if (restore_like && reached_dual && !m->abort_reconciled() && !m->fences_size()) {
            // The replacement counted toward acks: reconcile it into O first.
            NewTask(m, v1::TASK_RECONCILE, joining, WithoutFailed(O, failed_), s_.epoch);
          } else {
            NewTask(m, v1::TASK_CLEANUP, {}, joining, s_.epoch);
          }
          return;
        }
        if (!done) return;
        if (t->task.kind() == v1::TASK_RECONCILE) {
          DropTask(m);
          m->set_abort_reconciled(true);
          return;
        }
        TransitionTo(m, v1::MOVE_ABORTED, "routed back to old owners; partial copy wiped", false);
        return;
      }
      default:
        return;
    }
  }

  std::vector<const v1::Move*> ShardMoves(uint64_t gen, uint32_t shard) const {
    std::vector<const v1::Move*> out;
    for (const auto& [id, m] : s_.moves) {
      const v1::Move* cur = &m;
      auto ch = c_->moves.find(id);
      if (ch != c_->moves.end()) cur = &ch->second;
      if (cur->generation() == gen && cur->shard() == shard &&
          !MoveMachine::IsTerminal(cur->state())) {
        out.push_back(cur);
      }
    }
    return out;
  }

  void RecomputeRoutes() {
    for (const auto& [gen, shard] : touched_) {
      v1::ShardRoute r = s_.generations.at(gen).routes(static_cast<int>(shard));
      std::vector<const v1::Move*> moves = ShardMoves(gen, shard);
      int64_t deadline = 0;
      for (const v1::Move* m : moves) {
        if (m->state() == v1::MOVE_ACTIVE || m->state() == v1::MOVE_RECONCILING ||
            m->state() == v1::MOVE_CLEANUP) {
          SetStoredOwners(&r, m->group(), Vec(m->new_owners()), s_.group_order);
        }
        if (IsPausedState(m->state())) {
          deadline = std::max<int64_t>(
              deadline,
              m->paused_at_ms() + absl::ToInt64Milliseconds(cfg_.migration.max_write_stall));
        }
      }
      RecomputeShardRoute(&r, moves, failed_, s_.group_order, deadline);
      c_->routes[{gen, shard}] = r;
    }
  }

  void SetNodeStatus(const std::string& id, v1::NodeStatus st) {
    auto it = s_.nodes.find(id);
    if (it == s_.nodes.end() || it->second.status() == st) return;
    v1::Node n = it->second;
    n.set_status(st);
    c_->nodes[id] = n;
    c_->bump_epoch = true;
  }

  // A joining node becomes active with the incarnation its plan's moves copied
  // into (its reports are not recorded while it joins): a node that lost a copy
  // after its move finished is then seen changed, failed and rejoined.
  void ActivateJoined(const std::string& id, const std::vector<const v1::Move*>& moves) {
    SetNodeStatus(id, v1::NODE_ACTIVE);
    const std::string inc = MoveMachine::JoinedIncarnation(moves, id);
    auto it = s_.nodes.find(id);
    if (it == s_.nodes.end()) return;
    v1::Node n = AsRejoined(c_->nodes.count(id) ? c_->nodes[id] : it->second);
    if (!inc.empty()) n.set_incarnation(inc);
    if (n.SerializeAsString() != it->second.SerializeAsString()) c_->nodes[id] = n;
  }

  void FinishPlans() {
    for (const auto& [pid, plan] : s_.plans) {
      if (plan.state() != v1::PLAN_RUNNING && plan.state() != v1::PLAN_ABORTING) continue;
      size_t total = 0, done = 0, failed = 0, aborted = 0;
      std::vector<const v1::Move*> moves;
      for (const v1::Move* m0 : s_.PlanMoves(pid)) {
        auto ch = c_->moves.find(m0->id());
        const v1::Move& m = ch != c_->moves.end() ? ch->second : *m0;
        moves.push_back(&m);
        ++total;
        done += m.state() == v1::MOVE_DONE;
        failed += m.state() == v1::MOVE_FAILED;
        aborted += m.state() == v1::MOVE_ABORTED;
      }
      v1::PlanState next = v1::PLAN_STATE_UNSPECIFIED;
      if (plan.state() == v1::PLAN_RUNNING) {
        if (done == total)
          next = v1::PLAN_DONE;
        else if (failed > 0 && done + failed + aborted == total)
          next = v1::PLAN_FAILED;
      } else if (done + failed + aborted == total) {
        next = v1::PLAN_ABORTED;
      }
      if (next == v1::PLAN_STATE_UNSPECIFIED) continue;
      v1::Plan p = plan;
      p.set_state(next);
      p.set_ended_ms(now_);
      c_->plans[pid] = p;
      const v1::Event e = PlanStateEvent(pid, plan.state(), next,
                                         absl::StrCat(done, " of ", total, " moves done, ", failed,
                                                      " failed, ", aborted, " aborted"),
                                         now_);
      c_->events.push_back(e);
      out_->Info(absl::StrCat("plan ", pid, " ", PlanStateName(next), ": ", e.reason()));
      const bool success = next == v1::PLAN_DONE;
      const bool any_done = done > 0;
      switch (plan.kind()) {
        case v1::PLAN_ADD_NODE:
        case v1::PLAN_REJOIN:
          if ((success || any_done) && failed_.count(plan.node_id())) {
            // Marked failed while it joined: its copies were skipped (failed nodes
            // get no task and no write), so it must not count as an owner again.
            out_->Warn(absl::StrCat("plan ", pid, ": node ", plan.node_id(),
                                    " was marked failed while it joined; it stays failed "
                                    "(rejoin or restore it)"));
          } else if (success || any_done) {
            ActivateJoined(plan.node_id(), moves);
          } else if (next == v1::PLAN_ABORTED) {
            SetNodeStatus(plan.node_id(),
                          plan.kind() == v1::PLAN_REJOIN ? v1::NODE_FAILED : v1::NODE_REMOVED);
          }
          break;
        case v1::PLAN_ADD_GROUP:
          for (const v1::Node* n : s_.GroupNodes(plan.group())) {
            if (n->status() != v1::NODE_JOINING) continue;
            if (success || any_done) {
              ActivateJoined(n->id(), moves);
            } else if (next == v1::PLAN_ABORTED) {
              SetNodeStatus(n->id(), v1::NODE_REMOVED);
            }
          }
          if (next == v1::PLAN_ABORTED && !any_done) {
            Strings order = s_.group_order;
            order.erase(std::remove(order.begin(), order.end(), plan.group()), order.end());
            c_->group_order = order;
          }
          break;
        case v1::PLAN_REMOVE_NODE:
          SetNodeStatus(plan.node_id(), success ? v1::NODE_REMOVED : v1::NODE_ACTIVE);
          break;
        case v1::PLAN_RESTORE:
          if (success) SetNodeStatus(plan.node_id(), v1::NODE_REMOVED);
          break;
        case v1::PLAN_REMOVE_GROUP:
          for (const v1::Node* n : s_.GroupNodes(plan.group())) {
            if (n->status() == v1::NODE_LEAVING) {
              SetNodeStatus(n->id(), success ? v1::NODE_REMOVED : v1::NODE_ACTIVE);
            }
          }
          if (success) {
            Strings order = s_.group_order;
            order.erase(std::remove(order.begin(), order.end(), plan.group()), order.end());
            c_->group_order = order;
          }
          break;
        default:
          break;
      }
    }
  }

  // Recovery passes (coordinator/recovery_passes.h): a done one is dropped; a
  // pending or failed one follows its shard's route as this tick leaves it.
  void SweepLooseTasks() {
    RouteOf routes = [this](uint64_t gen, uint32_t shard) -> const v1::ShardRoute* {
      auto ch = c_->routes.find({gen, shard});
      if (ch != c_->routes.end()) return &ch->second;
      auto g = s_.generations.find(gen);
      if (g == s_.generations.end() || shard >= static_cast<uint32_t>(g->second.routes_size())) {
        return nullptr;
      }
      return &g->second.routes(static_cast<int>(shard));
    };
    for (const auto& [id, t] : s_.tasks) {
      // A failed node's fence (MarkNodeFailed): best effort, dropped once run.
      if (IsNodeFailureFence(t.task) &&
          (t.status == TaskRecord::Status::kDone || t.FailedForGood(cfg_.migration.task_retries))) {
        c_->deleted_tasks.insert(id);
        continue;
      }
      if (!IsRecoveryPass(t.task)) continue;
      RecoveryPassStep step = StepRecoveryPass(s_, t, routes);
      switch (step.action) {
        case RecoveryPassStep::Action::kKeep:
          break;
        case RecoveryPassStep::Action::kUpdate:
          out_->Info(absl::StrCat("recovery pass ", id, " of ", t.task.index(), " shard ",
                                  t.task.shard(), ": now ", absl::StrJoin(step.task.targets(), ","),
                                  " from ", absl::StrJoin(step.task.sources(), ",")));
          c_->tasks[id] = step.task;
          break;
        case RecoveryPassStep::Action::kDelete:
          if (t.status != TaskRecord::Status::kDone) {
            out_->Info(absl::StrCat("recovery pass ", id, " of ", t.task.index(), " shard ",
                                    t.task.shard(), " on ", absl::StrJoin(t.task.targets(), ","),
                                    " dropped: ", step.reason));
          }
          c_->deleted_tasks.insert(id);
          break;
      }
    }
  }

  std::set<std::pair<uint64_t, uint32_t>> touched_;
  std::map<std::string, uint64_t> cutovers_;  // node -> cutovers under way (this tick included)
};

}  // namespace

StepOutput MoveStepper::Step(const ClusterState& state, const StepInput& in, Change* change) const {
  return RunStep<MoveTick>(state, change, config_, in);
}

}  // namespace miroir::coordinator
