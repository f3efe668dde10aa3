#include "coordinator/coordinator_metrics.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "coordinator/anti_entropy_runner.h"
#include "coordinator/reshard_runner.h"

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
      registry
          .GetGauge("miroir_move_write_stall_ms", "Write stall of the move's cutover (ms).", labels)
          .Set(static_cast<double>(m.stall_ms()));
    }
  }
  registry.GetGauge("miroir_plans_active", "Plans running, paused or aborting.")
      .Set(static_cast<double>(active));
  for (const auto& [state, n] : by_state) {
    registry.GetGauge("miroir_moves", "Moves of unfinished plans by state.", {{"state", state}})
        .Set(n);
  }
  // Anti-entropy (docs/anti-entropy.md). Totals are since this process started.
  const AeCounters& ae = core.anti_entropy().counters();
  auto total = [&](const char* name, const char* help, uint64_t value) {
    Counter& c = registry.GetCounter(name, help);
    const double delta = static_cast<double>(value) - c.Value();
    if (delta > 0) c.Inc(delta);
  };
  total("miroir_ae_shards_scanned_total", "Anti-entropy passes completed (shards).",
        ae.shards_scanned.load());
  total("miroir_ae_mismatches_total", "Divergent keys anti-entropy found.", ae.mismatches.load());
  total("miroir_ae_documents_repaired_total", "Repair writes anti-entropy made.",
        ae.repaired.load());
  total("miroir_ae_passes_failed_total", "Anti-entropy passes that failed.", ae.failed.load());
  v1::AntiEntropyStatusResponse ae_status = core.anti_entropy().Status(0);
  int64_t last = 0;
  for (const auto& p : ae_status.passes()) {
    if (p.error().empty()) last = std::max(last, p.finished_ms());
  }
  registry
      .GetGauge("miroir_ae_last_pass_age_seconds",
                "Seconds since the last completed anti-entropy pass (-1: none yet).")
      .Set(last == 0 ? -1.0 : static_cast<double>(core.clock()->NowMs() - last) / 1000.0);
  // Resharding (docs/resharding.md); phase numbering of the original project.
  registry.GetGauge("miroir_reshard_in_progress", "Reshards started and not yet ended.")
      .Set(static_cast<double>(core.reshard().InProgress()));
  registry
      .GetGauge("miroir_reshard_phase",
                "Phase of the running reshard: 0 idle, 1 shadow, 2 backfill and catch-up, "
                "3 verify, 4 swap, 5 cleanup.")
      .Set(static_cast<double>(core.reshard().Phase()));
  total("miroir_reshard_documents_backfilled_total",
        "Documents copied into shadow generations (backfill and catch-up).",
        core.reshard().DocumentsBackfilled());
}

}  // namespace miroir::coordinator
