#include "coordinator/coordinator_metrics.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/reshard_names.h"
#include "coordinator/anti_entropy_runner.h"
#include "coordinator/reshard_machine.h"
#include "coordinator/reshard_runner.h"

namespace miroir::coordinator {

namespace {

std::string Lower(std::string name, std::string_view prefix) {
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// Nodes by status, reachability and durability as the workers last reported.
void RefreshNodeMetrics(const ClusterCheckInput& in, MetricsRegistry& registry) {
  for (const auto& n : in.nodes) {
    for (int s = v1::NODE_ACTIVE; s <= v1::NODE_REMOVED; ++s) {
      const auto status = static_cast<v1::NodeStatus>(s);
      registry
          .GetGauge("miroir_node_status", "1 for the node's current status, 0 for the others.",
                    {{"node", n.id()}, {"status", Lower(v1::NodeStatus_Name(status), "NODE_")}})
          .Set(n.status() == status ? 1 : 0);
    }
    auto h = in.health.find(n.id());
    if (h == in.health.end() || n.status() == v1::NODE_REMOVED) continue;
    const MetricLabels node = {{"node", n.id()}};
    registry
        .GetGauge("miroir_node_reachable",
                  "1 when the last worker probe of the node succeeded, 0 when it failed.", node)
        .Set(h->second.reachable ? 1 : 0);
    registry
        .GetGauge("miroir_node_report_age_seconds",
                  "Seconds since a worker last reported the node.", node)
        .Set(static_cast<double>(std::max<int64_t>(0, in.now_ms - h->second.reported_ms)) / 1000.0);
    if (!h->second.store_config.empty()) {
      bool durable = true;
      for (const auto& [key, want] : RequiredDurabilityConfig()) {
        auto got = h->second.store_config.find(key);
        durable = durable && got != h->second.store_config.end() && got->second == want;
      }
      registry
          .GetGauge("miroir_node_durable",
                    "1 when the store runs with appendonly yes, appendfsync always, "
                    "maxmemory-policy noeviction (as last read), else 0.",
                    node)
          .Set(durable ? 1 : 0);
    }
  }
}

}  // namespace

void RefreshStateMetrics(const ClusterCheckInput& in, MetricsRegistry& registry) {
  std::map<std::string, double> plans, moves;
  for (int s = v1::PLAN_RUNNING; s <= v1::PLAN_ABORTED; ++s) {
    plans[Lower(v1::PlanState_Name(static_cast<v1::PlanState>(s)), "PLAN_")] = 0;
  }
  for (int s = v1::MOVE_PENDING; s <= v1::MOVE_ABORTED; ++s) {
    moves[MoveStateName(static_cast<v1::MoveState>(s))] = 0;
  }
  size_t active = 0;
  std::vector<MetricLabels> live_moves;
  for (const auto& p : in.plans) {
    plans[Lower(v1::PlanState_Name(p.state()), "PLAN_")] += 1;
    if (PlanEnded(p.state())) continue;
    ++active;
    for (const auto& m : p.moves()) {
      moves[MoveStateName(m.state())] += 1;
      MetricLabels labels = {{"plan", absl::StrCat(p.id())},
                             {"index", m.index()},
                             {"shard", absl::StrCat(m.shard())},
                             {"group", m.group()}};
      registry.GetGauge("miroir_move_state", "Current state of a move (MoveState number).", labels)
          .Set(static_cast<double>(m.state()));
      registry
          .GetGauge("miroir_move_state_seconds", "Seconds the move has been in its current state.",
                    labels)
          .Set(m.state_since_ms() > 0
                   ? static_cast<double>(std::max<int64_t>(0, in.now_ms - m.state_since_ms())) /
                         1000.0
                   : 0.0);
      registry
          .GetGauge("miroir_move_documents_copied", "Documents copied by a move so far.", labels)
          .Set(static_cast<double>(m.documents_copied()));
      registry
          .GetGauge("miroir_move_write_stall_ms", "Write stall of the move's cutover (ms).", labels)
          .Set(static_cast<double>(m.stall_ms()));
      live_moves.push_back(std::move(labels));
    }
  }
  for (const char* name : {"miroir_move_state", "miroir_move_state_seconds",
                           "miroir_move_documents_copied", "miroir_move_write_stall_ms"}) {
    registry.RetainGauges(name, live_moves);
  }
  registry.GetGauge("miroir_plans_active", "Plans running, paused or aborting.")
      .Set(static_cast<double>(active));
  for (const auto& [state, n] : plans) {
    registry
        .GetGauge("miroir_plans", "Plans by state (every plan ever created).", {{"state", state}})
        .Set(n);
  }
  for (const auto& [state, n] : moves) {
    registry.GetGauge("miroir_moves", "Moves of unfinished plans by state.", {{"state", state}})
        .Set(n);
  }
  std::map<std::string, double> reshards;
  for (int s = v1::ReshardState_MIN; s <= v1::ReshardState_MAX; ++s) {
    if (ReshardMachine::IsKnown(static_cast<v1::ReshardState>(s))) {
      reshards[ReshardStateName(static_cast<v1::ReshardState>(s))] = 0;
    }
  }
  double not_converging = 0;
  double final_delta_ms = 0;
  for (const auto& r : in.reshards) {
    reshards[ReshardStateName(r.state())] += 1;
    if (r.state() != v1::RESHARD_CATCHING_UP && r.state() != v1::RESHARD_ROLLING_BACK) continue;
    not_converging += r.not_converging() ? 1 : 0;
    if (r.estimated_final_delta_ms() != UINT64_MAX) {  // UINT64_MAX: no rate measured yet
      final_delta_ms = std::max(final_delta_ms, static_cast<double>(r.estimated_final_delta_ms()));
    }
  }
  registry
      .GetGauge("miroir_reshard_not_converging",
                "Reshards catching up past migration.catch_up_max without converging (the "
                "operator decides: throttle writes, reshard cutover --force, or abort).")
      .Set(not_converging);
  registry
      .GetGauge("miroir_reshard_estimated_final_delta_ms",
                "Largest estimated final-delta duration of a reshard catching up (converges at "
                "half of max_write_stall).")
      .Set(final_delta_ms);
  for (const auto& [state, n] : reshards) {
    registry
        .GetGauge("miroir_reshards", "Reshards by state (every reshard ever started).",
                  {{"state", state}})
        .Set(n);
  }
}

void RefreshCoordinatorMetrics(Coordinator& core, MetricsRegistry& registry) {
  const ClusterCheckInput in = core.FleetSnapshot();
  registry.GetGauge("miroir_coordinator_leader", "1 on the coordinator acting for the cluster.")
      .Set(1);
  registry.GetGauge("miroir_routing_epoch", "Current cluster-wide routing epoch.")
      .Set(static_cast<double>(in.epoch));
  registry.GetGauge("miroir_workers_live", "Workers holding a live lease.")
      .Set(static_cast<double>(in.workers.size()));
  size_t behind = 0;
  for (const auto& w : in.workers) behind += w.acked_epoch < in.epoch ? 1 : 0;
  registry
      .GetGauge("miroir_workers_behind_epoch",
                "Live workers that have not acked the current routing epoch.")
      .Set(static_cast<double>(behind));
  registry.GetGauge("miroir_pending_recovery_passes", "Recovery passes not yet done.")
      .Set(static_cast<double>(in.recovery_passes));
  RefreshStateMetrics(in, registry);
  RefreshNodeMetrics(in, registry);
  const v1::CheckClusterResponse check = JudgeCluster(in);
  size_t errors = 0;
  for (const auto& f : check.findings()) errors += f.severity() == "error" ? 1 : 0;
  registry
      .GetGauge("miroir_check_errors", "Errors `miroir-ctl check` would report now (0: healthy).")
      .Set(static_cast<double>(errors));
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
