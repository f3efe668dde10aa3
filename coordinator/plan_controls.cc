#include "coordinator/plan_controls.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/move_gates.h"
#include "coordinator/move_machine.h"

namespace miroir::coordinator {
namespace {

std::string WindowName(const std::string& w) { return w.empty() ? "(config default)" : w; }

v1::Event PlanEvent(const v1::Plan& p, int64_t now_ms, const std::string& reason) {
  return PlanStateEvent(p.id(), p.state(), p.state(), reason, now_ms);
}

}  // namespace

absl::Status PlanUpdateChange(const ClusterState& state, const v1::UpdatePlanRequest& req,
                              const CoordinatorConfig& config, int64_t now_ms, Change* change,
                              std::vector<uint64_t>* relaunch) {
  if (req.id() == 0) return absl::InvalidArgumentError("id: plan id is required");
  if (!req.has_throttle_docs_per_s() && !req.has_schedule_window()) {
    return absl::InvalidArgumentError(
        "throttle_docs_per_s, schedule_window: nothing to change (give at least one)");
  }
  if (req.has_throttle_docs_per_s() && req.throttle_docs_per_s() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("throttle_docs_per_s: must be at least 1 document/s, got ",
                     req.throttle_docs_per_s(), " (pause the plan to stop copying)"));
  }
  if (req.has_schedule_window()) {
    if (auto w = PlanWindows(req.schedule_window(), config); !w.ok()) return w.status();
  }
  auto it = state.plans.find(req.id());
  if (it == state.plans.end()) {
    return absl::NotFoundError(absl::StrCat("id: unknown plan ", req.id()));
  }
  const v1::Plan& old = it->second;
  if (PlanEnded(old.state()) || old.state() == v1::PLAN_ABORTING) {
    return absl::FailedPreconditionError(absl::StrCat("plan ", old.id(), " is ",
                                                      PlanStateName(old.state()),
                                                      "; only a running or paused plan changes"));
  }
  v1::Plan plan = old;
  std::vector<std::string> what;
  std::vector<std::pair<uint64_t, v1::Task>> tasks;
  std::vector<uint64_t> copies;
  if (req.has_throttle_docs_per_s()) {
    const auto throttle = static_cast<uint64_t>(req.throttle_docs_per_s());
    what.push_back(
        absl::StrCat("throttle ", old.throttle_docs_per_s(), " -> ", throttle, " docs/s"));
    plan.set_throttle_docs_per_s(throttle);
    for (const v1::Move* m : state.PlanMoves(old.id())) {
      if (MoveMachine::IsTerminal(m->state()) || m->task_id() == 0) continue;
      auto t = state.tasks.find(m->task_id());
      if (t == state.tasks.end()) continue;
      v1::Task task = t->second.task;
      task.set_throttle_docs_per_s(throttle);
      tasks.emplace_back(task.id(), task);
      if (task.kind() == v1::TASK_BACKFILL || task.kind() == v1::TASK_CATCH_UP) {
        copies.push_back(task.id());
      }
    }
  }
  if (req.has_schedule_window()) {
    what.push_back(absl::StrCat("schedule window ", WindowName(old.schedule_window()), " -> ",
                                WindowName(req.schedule_window())));
    plan.set_schedule_window(req.schedule_window());
  }
  change->plans[plan.id()] = plan;
  for (auto& [id, t] : tasks) change->tasks[id] = std::move(t);
  change->events.push_back(
      PlanEvent(plan, now_ms, absl::StrCat("updated by operator: ", absl::StrJoin(what, ", "))));
  relaunch->insert(relaunch->end(), copies.begin(), copies.end());
  return absl::OkStatus();
}

absl::Status ForcedCutoverChange(const ClusterState& state, uint64_t id, bool force,
                                 const CoordinatorConfig& config, int64_t now_ms, Change* change) {
  if (id == 0) return absl::InvalidArgumentError("id: plan id is required");
  if (!force) {
    return absl::InvalidArgumentError(
        "force: a cutover before the catch-up converged must be forced (--force); the moves "
        "cut over on their own once it converges");
  }
  auto it = state.plans.find(id);
  if (it == state.plans.end()) return absl::NotFoundError(absl::StrCat("id: unknown plan ", id));
  const v1::Plan& plan = it->second;
  if (plan.state() != v1::PLAN_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat(
        "plan ", id, " is ", PlanStateName(plan.state()), "; only a running plan cuts over"));
  }
  // The same gate as before activation: force never bypasses it.
  if (auto gate = CheckDeltaSkipGate(plan.skip_delta_pass(), config); !gate.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("cutover refused: ", gate.message()));
  }
  std::vector<v1::Move> forced;
  uint64_t left = 0;
  for (const v1::Move* m : state.PlanMoves(id)) {
    if (m->state() != v1::MOVE_CATCHING_UP || m->force_cutover()) continue;
    v1::Move copy = *m;
    copy.set_force_cutover(true);
    left += m->remaining();
    forced.push_back(std::move(copy));
  }
  if (forced.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "plan ", id, " has no move catching up that is not already forced to cut over"));
  }
  for (auto& m : forced) change->moves[m.id()] = m;
  change->events.push_back(PlanEvent(
      plan, now_ms,
      absl::StrCat("cutover forced by operator: ", forced.size(), " moves catching up (", left,
                   " documents in their last passes) pause after their current pass; "
                   "max_write_stall ",
                   absl::FormatDuration(config.migration.max_write_stall), " still applies")));
  return absl::OkStatus();
}

}  // namespace miroir::coordinator
