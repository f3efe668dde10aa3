// Prometheus gauges of the coordinator (docs/operations.md "Metrics"): plans,
// moves and reshards by state, per-move series (dropped when their plan ends),
// node status, reachability and durability, workers behind the epoch, pending
// recovery passes, the leader flag, anti-entropy and reshard progress.
// Refreshed from Coordinator::FleetSnapshot; thread-safe. The alert rules in
// deploy/prometheus/alerts.yaml use only these and the workers' metrics (a test
// checks it).
#ifndef MIROIR_COORDINATOR_COORDINATOR_METRICS_H_
#define MIROIR_COORDINATOR_COORDINATOR_METRICS_H_

#include "common/metrics.h"
#include "coordinator/cluster_check.h"
#include "coordinator/coordinator.h"

namespace miroir::coordinator {

// Sets every coordinator gauge from `core`'s current state into `registry`.
void RefreshCoordinatorMetrics(Coordinator& core, MetricsRegistry& registry);

// The part read from a snapshot of the model (no I/O): plans and moves by
// state, per-move series (dropped when their plan ends), reshards by state,
// reshards not converging and the largest estimated final delta of those
// catching up.
void RefreshStateMetrics(const ClusterCheckInput& in, MetricsRegistry& registry);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_COORDINATOR_METRICS_H_
