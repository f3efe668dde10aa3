// The Coordinator's live controls (issue 22 item 3): plan update, pause/resume
// of every plan, forced cutover, the running config and its reload, and the
// state backup. Decisions are in plan_controls.h and config_reload.h.
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/coordinator.h"
#include "coordinator/plan_controls.h"
#include "spdlog/spdlog.h"

namespace miroir::coordinator {

CoordinatorConfig Coordinator::config() const {
  absl::ReaderMutexLock l(&mu_);
  return config_;
}

absl::StatusOr<v1::GetPlanResponse> Coordinator::UpdatePlan(const v1::UpdatePlanRequest& req) {
  const int64_t now = clock_->NowMs();
  std::vector<uint64_t> relaunch;
  MIROIR_RETURN_IF_ERROR(Mutate([&](const ClusterState& s, Change* c) {
                           return PlanUpdateChange(s, req, config_, now, c, &relaunch);
                         }).status());
  // The copies running now restart from their checkpoints with the new throttle:
  // the holder is told to stop, and the next leasing round leases them again
  // (a higher lease generation: what the old run still sends is refused).
  std::vector<std::pair<uint64_t, std::string>> cancels;
  {
    absl::MutexLock l(&mu_);
    for (uint64_t id : relaunch) {
      auto it = state_.tasks.find(id);
      if (it == state_.tasks.end() || it->second.status != TaskRecord::Status::kLeased) continue;
      cancels.push_back({id, it->second.worker});
      it->second.status = TaskRecord::Status::kPending;
      it->second.worker.clear();
    }
  }
  for (const auto& [id, worker] : cancels) {
    v1::CoordinatorMessage msg;
    msg.mutable_cancel()->set_task_id(id);
    msg.mutable_cancel()->set_reason("plan throttle changed; leased again with the new throttle");
    registry_.Send(worker, msg);
  }
  spdlog::info("plan {} updated by operator ({} running copies re-leased)", req.id(),
               cancels.size());
  Wake();
  return PlanResponse(req.id());
}

absl::StatusOr<v1::PlansChangedResponse> Coordinator::SwitchAllPlans(v1::PlanState from,
                                                                     v1::PlanState to,
                                                                     const std::string& reason) {
  const int64_t now = clock_->NowMs();
  std::vector<uint64_t> ids;
  MIROIR_RETURN_IF_ERROR(Mutate([&](const ClusterState& s, Change* c) {
                           for (const auto& [id, plan] : s.plans) {
                             if (plan.state() != from) continue;
                             v1::Plan p = plan;
                             p.set_state(to);
                             c->plans[id] = p;
                             c->events.push_back(PlanStateEvent(id, from, to, reason, now));
                             ids.push_back(id);
                           }
                           return absl::OkStatus();
                         }).status());
  v1::PlansChangedResponse resp;
  {
    absl::ReaderMutexLock l(&mu_);
    for (uint64_t id : ids) *resp.add_plans() = state_.PlanWithMoves(id);
  }
  if (!ids.empty()) {
    spdlog::info("{} plans {} ({})", ids.size(), PlanStateName(to), reason);
    Wake();
  }
  return resp;
}

absl::StatusOr<v1::PlansChangedResponse> Coordinator::PauseAllPlans() {
  return SwitchAllPlans(v1::PLAN_RUNNING, v1::PLAN_PAUSED, "paused by operator (pause-all)");
}

absl::StatusOr<v1::PlansChangedResponse> Coordinator::ResumeAllPlans() {
  return SwitchAllPlans(v1::PLAN_PAUSED, v1::PLAN_RUNNING, "resumed by operator (resume-all)");
}

absl::StatusOr<v1::GetPlanResponse> Coordinator::CutoverPlan(uint64_t id, bool force) {
  const int64_t now = clock_->NowMs();
  MIROIR_RETURN_IF_ERROR(Mutate([&](const ClusterState& s, Change* c) {
                           return ForcedCutoverChange(s, id, force, config_, now, c);
                         }).status());
  spdlog::warn("plan {}: cutover forced by operator", id);
  Wake();
  return PlanResponse(id);
}

v1::GetConfigResponse Coordinator::GetConfig() {
  v1::GetConfigResponse resp;
  absl::ReaderMutexLock l(&mu_);
  for (const ConfigKeyValue& kv : ConfigEntries(config_)) {
    v1::ConfigEntry* e = resp.add_entries();
    e->set_key(kv.key);
    e->set_value(kv.value);
    e->set_live(kv.live);
  }
  resp.set_source(config_source_);
  resp.set_loaded_ms(config_loaded_ms_);
  resp.set_reloads(reloads_);
  return resp;
}

absl::StatusOr<v1::ReloadConfigResponse> Coordinator::ReloadConfig() {
  if (!config_loader_) {
    return absl::FailedPreconditionError(
        "the coordinator was started without --config: nothing to reload");
  }
  absl::MutexLock serial(&reload_mu_);
  absl::StatusOr<CoordinatorConfig> file = config_loader_();
  if (!file.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("reload refused: ", file.status().message()));
  }
  MIROIR_ASSIGN_OR_RETURN(ConfigReload reload, PlanConfigReload(config(), *file));
  v1::ReloadConfigResponse resp;
  resp.set_source(config_source_);
  for (const auto& ch : reload.applied) {
    v1::ConfigChange* c = resp.add_applied();
    c->set_key(ch.key);
    c->set_old_value(ch.old_value);
    c->set_new_value(ch.new_value);
    spdlog::warn("config reload: {} {} -> {}", ch.key, ch.old_value, ch.new_value);
  }
  for (const auto& ch : reload.restart_needed) {
    v1::ConfigChange* c = resp.add_restart_needed();
    c->set_key(ch.key);
    c->set_old_value(ch.old_value);
    c->set_new_value(ch.new_value);
    spdlog::warn("config reload: {} changed in {} ({} -> {}) but needs a restart; kept {}", ch.key,
                 config_source_, ch.old_value, ch.new_value, ch.old_value);
  }
  if (reload.applied.empty()) return resp;
  bool threaded = false;
  uint64_t target = 0;
  {
    absl::MutexLock l(&run_mu_);
    threaded = runner_thread_.joinable() && !stopping_;
    pending_config_ = std::move(reload.config);
    target = configs_applied_ + 1;
    wake_ = true;
  }
  if (!threaded) {
    ApplyPendingConfig();
    return resp;
  }
  absl::MutexLock l(&run_mu_);
  struct Arg {
    Coordinator* c;
    uint64_t target;
  } arg{this, target};
  const bool applied = run_mu_.AwaitWithTimeout(absl::Condition(
                                                    +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                                      return a->c->configs_applied_ >= a->target;
                                                    },
                                                    &arg),
                                                absl::Seconds(10));
  if (!applied) {
    return absl::UnavailableError("reload: the runner did not apply the config within 10s");
  }
  return resp;
}

void Coordinator::ApplyPendingConfig() {
  std::optional<CoordinatorConfig> next;
  {
    absl::MutexLock l(&run_mu_);
    next.swap(pending_config_);
  }
  if (!next) return;
  {
    absl::MutexLock w(&write_mu_);
    absl::MutexLock l(&mu_);
    CopyLiveKeys(*next, &config_);
    config_loaded_ms_ = clock_->NowMs();
    ++reloads_;
  }
  spdlog::set_level(spdlog::level::from_str(next->log_level));
  absl::MutexLock l(&run_mu_);
  ++configs_applied_;
}

absl::StatusOr<uint64_t> Coordinator::BackupTo(const std::string& path) {
  uint64_t epoch = 0;
  // Under write_mu_: no commit lands while the copy is taken, so `epoch` is the
  // copy's (the SQLite backup itself is consistent either way).
  absl::MutexLock w(&write_mu_);
  {
    absl::ReaderMutexLock l(&mu_);
    epoch = state_.epoch;
  }
  MIROIR_RETURN_IF_ERROR(store_->BackupTo(path));
  return epoch;
}

}  // namespace miroir::coordinator
