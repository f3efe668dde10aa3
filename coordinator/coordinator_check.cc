// Coordinator::CheckCluster: gathers the state `miroir-ctl check` judges
// (coordinator/cluster_check.h) under the state lock; no I/O.
#include <algorithm>

#include "coordinator/cluster_check.h"
#include "coordinator/coordinator.h"
#include "coordinator/recovery_passes.h"

namespace miroir::coordinator {

v1::CheckClusterResponse Coordinator::CheckCluster() { return JudgeCluster(FleetSnapshot()); }

ClusterCheckInput Coordinator::FleetSnapshot() {
  ClusterCheckInput in;
  in.now_ms = clock_->NowMs();
  // Workers report every node every few seconds (worker node_report_interval,
  // 3 s by default); a report older than three lease TTLs (at least 15 s) means
  // no worker reaches the coordinator about the node any more.
  in.report_stale_ms =
      std::max<int64_t>(15000, 3 * absl::ToInt64Milliseconds(registry_.lease_ttl()));
  in.workers = registry_.Live();
  {
    absl::ReaderMutexLock l(&mu_);
    in.epoch = state_.epoch;
    for (const auto& [id, n] : state_.nodes) in.nodes.push_back(n);
    in.health = health_;
    for (const auto& [id, p] : state_.plans) in.plans.push_back(state_.PlanWithMoves(id));
    for (const auto& [id, r] : state_.reshards) in.reshards.push_back(r);
    for (const auto& [id, g] : state_.generations) {
      v1::GenerationRoute head;
      head.set_index(g.index());
      head.set_generation(g.generation());
      head.set_role(g.role());
      in.generations.push_back(std::move(head));
    }
    for (const auto& [id, t] : state_.tasks) {
      if (!IsRecoveryPass(t.task)) continue;
      ++in.recovery_passes;
      for (const auto& node : t.task.targets()) ++in.pending_passes[node];
    }
  }
  return in;
}

}  // namespace miroir::coordinator
