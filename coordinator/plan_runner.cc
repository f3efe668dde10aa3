#include "coordinator/plan_runner.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/task_kinds.h"
#include "coordinator/coordinator.h"
#include "coordinator/move_machine.h"
#include "coordinator/move_stepper.h"
#include "coordinator/recovery_passes.h"
#include "coordinator/reshard_runner.h"
#include "coordinator/routing_tables.h"
#include "coordinator/task_leasing.h"
#include "spdlog/spdlog.h"

namespace miroir::coordinator {

void PlanRunner::Tick() {
  ReleaseTasks();
  StepPlans();
  c_->reshard().Tick();  // between stepping and leasing: its new tasks lease now
  LeaseTasks();
}

void PlanRunner::ReleaseTasks() {
  std::vector<std::string> unclean;
  for (const WorkerSnapshot& w : c_->registry_.ExpireLeases()) {
    spdlog::warn("worker {} lease expired; its tasks will be reassigned", w.id);
    if (!w.ended_clean) unclean.push_back(w.id);
  }
  // Sessions recorded before a restart whose worker did not come back within the
  // grace every restart waits before acting on workers (one lease TTL plus the
  // allowed drift) ended unclean too.
  // (Only those: a session this process records is opened just before its worker
  // registers, and ends through its lease like any other.)
  if (!c_->sessions_before_start_.empty() && c_->StepInputNow().acks_ready) {
    for (const auto& id : c_->sessions_before_start_) {
      if (!c_->registry_.Known(id) &&
          std::find(unclean.begin(), unclean.end(), id) == unclean.end()) {
        spdlog::warn("worker {} did not come back after the restart", id);
        unclean.push_back(id);
      }
    }
    c_->sessions_before_start_.clear();
  }
  if (!unclean.empty()) c_->ScheduleSessionEndPasses(unclean);
  absl::MutexLock l(&c_->mu_);
  for (auto& [id, t] : c_->state_.tasks) {
    if (t.status == TaskRecord::Status::kLeased && !c_->registry_.IsLive(t.worker)) {
      spdlog::info("task {} released from {} (lease expired)", id, t.worker);
      t.status = TaskRecord::Status::kPending;
      t.worker.clear();
    } else if (t.status == TaskRecord::Status::kFailed &&
               ((t.retryable && t.failures <= c_->config_.migration.task_retries) ||
                IsRecoveryPass(t.task)) &&
               c_->clock_->NowMs() >= t.retry_at_ms) {
      // A recovery pass is retried whatever the failure (an unreachable node, a
      // fence raised by a cutover) until it succeeds or is no longer needed: a
      // replica that missed an acknowledged write must not wait for anti-entropy.
      t.status = TaskRecord::Status::kPending;
      t.worker.clear();
    }
  }
}

void PlanRunner::StepPlans() {
  const StepInput in = c_->StepInputNow();
  std::vector<Lease> leases;
  StepOutput out;
  auto st = c_->Mutate([&](const ClusterState& s, Change* change) {
    out = MoveStepper(c_->config_).Step(s, in, change);
    leases = LeaseNewCutoverTasks(s, change);
    return absl::OkStatus();
  });
  LogStepOutput(out, st.status(), "plan runner");
  if (!st.ok()) return;
  SendLeases(leases);
}

namespace {

// Whether writes to the task's shard are held until it is done: the cutover of a
// move (paused, final_delta) or a reshard's swap.
bool HoldsWrites(const ClusterState& s, const v1::Task& t) {
  if (auto m = s.moves.find(t.move_id()); m != s.moves.end()) {
    return IsPausedState(m->second.state());
  }
  for (const auto& [id, r] : s.reshards) {
    if (r.index() == t.index() && r.paused_at_ms() > 0 &&
        (t.generation() == r.src_generation() || t.generation() == r.dst_generation())) {
      return true;
    }
  }
  return false;
}

// The leasing input of task `t`: its nodes are its sources and targets.
PendingTask PendingOf(const v1::Task& t, bool holds_writes) {
  PendingTask p{t.id(), holds_writes, {t.sources().begin(), t.sources().end()}};
  p.nodes.insert(p.nodes.end(), t.targets().begin(), t.targets().end());
  return p;
}

// Nodes of the moves being cut over right now (O ∪ N and the sources); a cutover
// finishes even in a paused plan.
std::set<std::string> CutoverNodes(const ClusterState& s) {
  std::set<std::string> out;
  for (const auto& [id, m] : s.moves) {
    if (!IsPausedState(m.state())) continue;
    out.merge(MoveMachine::CutoverNodes(m));
  }
  return out;
}

}  // namespace

std::map<std::string, int64_t> PlanRunner::FreeSlots(const ClusterState& s) {
  std::map<std::string, int64_t> free;
  for (const auto& w : c_->registry_.Live()) {
    if (w.connected) free[w.id] = w.max_tasks;
  }
  for (const auto& [id, t] : s.tasks) {
    if (t.status == TaskRecord::Status::kLeased && free.count(t.worker)) free[t.worker]--;
  }
  return free;
}

std::vector<PlanRunner::Lease> PlanRunner::LeaseNewCutoverTasks(const ClusterState& s,
                                                                Change* change) {
  std::vector<PendingTask> pending;
  for (const auto& [id, t] : change->tasks) {
    if (s.tasks.count(id)) continue;
    if (!t.node_shards().empty()) {  // a reshard's node task; a fence or F holds writes
      pending.push_back(PendingOf(t, t.kind() == v1::TASK_FENCE || IsFinalDelta(t)));
      continue;
    }
    if (t.kind() != v1::TASK_FENCE && t.kind() != v1::TASK_FINAL_DELTA) continue;
    auto m = change->moves.find(t.move_id());
    const v1::Move* move = m != change->moves.end() ? &m->second : nullptr;
    if (move == nullptr) {
      auto sm = s.moves.find(t.move_id());
      if (sm != s.moves.end()) move = &sm->second;
    }
    if (move == nullptr || !IsPausedState(move->state())) continue;
    pending.push_back(PendingOf(t, /*holds_writes=*/true));
  }
  if (pending.empty()) return {};
  std::vector<Lease> leases;
  for (const LeaseChoice& c : ChooseLeases(pending, FreeSlots(s))) {
    v1::Task& t = change->tasks[c.task];
    t.set_lease_generation(t.lease_generation() + 1);
    leases.push_back({c.task, c.worker});
  }
  return leases;
}

void PlanRunner::LeaseTasks() {
  std::vector<Lease> leases;
  {
    absl::ReaderMutexLock l(&c_->mu_);
    std::map<std::string, int64_t> free = FreeSlots(c_->state_);
    std::vector<PendingTask> pending;
    for (const auto& [id, t] : c_->state_.tasks) {
      if (t.status != TaskRecord::Status::kPending) continue;
      const bool holds_writes = HoldsWrites(c_->state_, t.task);
      auto m = c_->state_.moves.find(t.task.move_id());
      if (m != c_->state_.moves.end() && !holds_writes) {
        auto p = c_->state_.plans.find(m->second.plan_id());
        if (p != c_->state_.plans.end() && p->second.state() == v1::PLAN_PAUSED) continue;
      }
      pending.push_back(PendingOf(t.task, holds_writes));
    }
    for (const LeaseChoice& c : ChooseLeases(pending, std::move(free), CutoverNodes(c_->state_))) {
      leases.push_back({c.task, c.worker});
    }
  }
  if (leases.empty()) return;
  auto st = c_->Mutate([&](const ClusterState& s, Change* change) {
    for (const Lease& lease : leases) {
      auto it = s.tasks.find(lease.task);
      if (it == s.tasks.end() || it->second.status != TaskRecord::Status::kPending) continue;
      v1::Task t = it->second.task;
      const LeaseEpoch e =
          EpochForLease(t.epoch(), s.epoch,
                        /*fixed=*/t.kind() == v1::TASK_FENCE || t.kind() == v1::TASK_FINAL_DELTA,
                        IsDestructiveTask(t), /*leased_before=*/t.lease_generation() > 0);
      if (e.publish_new) change->bump_epoch = true;  // committed and published before it is sent
      t.set_lease_generation(t.lease_generation() + 1);
      t.set_epoch(e.epoch);
      change->tasks[t.id()] = t;
    }
    return absl::OkStatus();
  });
  if (!st.ok()) {
    spdlog::error("leasing tasks: {}", std::string(st.status().message()));
    return;
  }
  SendLeases(leases);
}

void PlanRunner::SendLeases(const std::vector<Lease>& leases) {
  for (const Lease& lease : leases) {
    v1::CoordinatorMessage msg;
    {
      absl::MutexLock l(&c_->mu_);
      auto it = c_->state_.tasks.find(lease.task);
      if (it == c_->state_.tasks.end() || it->second.status != TaskRecord::Status::kPending) {
        continue;
      }
      it->second.status = TaskRecord::Status::kLeased;
      it->second.worker = lease.worker;
      *msg.mutable_task() = it->second.task;
    }
    msg.mutable_task()->set_term(c_->store_->LeaderTerm());
    if (!c_->registry_.Send(lease.worker, msg)) {
      absl::MutexLock l(&c_->mu_);
      auto it = c_->state_.tasks.find(lease.task);
      if (it != c_->state_.tasks.end()) {
        it->second.status = TaskRecord::Status::kPending;
        it->second.worker.clear();
      }
    } else {
      spdlog::info("task {} ({}, {} shard {}) leased to {} (generation {})", lease.task,
                   v1::TaskKind_Name(msg.task().kind()), msg.task().index(), msg.task().shard(),
                   lease.worker, msg.task().lease_generation());
    }
  }
}

}  // namespace miroir::coordinator
