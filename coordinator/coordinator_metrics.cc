#include "coordinator/coordinator_metrics.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace miroir::coordinator {

void RefreshCoordinatorMetrics(Coordinator& core, MetricsRegistry& registry) {
  v1::GetStatusResponse st = core.Status("");
  registry.GetGauge("miroir_routing_epoch", "Current cluster-wide routing epoch.")
      .Set(static_cast<double>(st.epoch()));
  registry.GetGauge("miroir_workers_live", "Workers holding a live lease.")
      .Set(static_cast<double>(st.workers_size()));
  registry.GetGauge("miroir_pending_recovery_passes", "Recovery passes not yet done.")
      .Set(static_cast<double>(st.pending_recovery_passes()));
  size_t active = 0;
  std::map<std::string, double> by_state;
  for (int s = v1::MOVE_PENDING; s <= v1::MOVE_ABORTED; ++s) {
    by_state[MoveStateName(static_cast<v1::MoveState>(s))] = 0;
  }
  for (const auto& p : st.plans()) {
    if (p.state() == v1::PLAN_RUNNING || p.state() == v1::PLAN_PAUSED ||
        p.state() == v1::PLAN_ABORTING) {
      ++active;
    }
    for (const auto& m : p.moves()) {
      by_state[MoveStateName(m.state())] += 1;
      const MetricLabels labels = {{"plan", absl::StrCat(p.id())},
                                   {"index", m.index()},
                                   {"shard", absl::StrCat(m.shard())},
                                   {"group", m.group()}};
      registry.GetGauge("miroir_move_state", "Current state of a move (MoveState number).", labels)
          .Set(static_cast<double>(m.state()));
      registry
          .GetGauge("miroir_move_documents_copied", "Documents copied by a move so far.", labels)
          .Set(static_cast<double>(m.documents_copied()));
      registry.GetGauge("miroir_move_write_stall_ms", "Write stall of the move's cutover (ms).",
                        labels)
          .Set(static_cast<double>(m.stall_ms()));
    }
  }
  registry.GetGauge("miroir_plans_active", "Plans running, paused or aborting.")
      .Set(static_cast<double>(active));
  for (const auto& [state, n] : by_state) {
    registry.GetGauge("miroir_moves", "Moves of unfinished plans by state.", {{"state", state}})
        .Set(n);
  }
}

}  // namespace miroir::coordinator
