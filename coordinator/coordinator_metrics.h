// Prometheus gauges of the coordinator (miroir_plans_active, miroir_moves{state},
// miroir_routing_epoch, miroir_workers_live, miroir_move_state, documents copied,
// cutover write stall). Refreshed from a Coordinator snapshot; thread-safe.
#ifndef MIROIR_COORDINATOR_COORDINATOR_METRICS_H_
#define MIROIR_COORDINATOR_COORDINATOR_METRICS_H_

#include "common/metrics.h"
#include "coordinator/coordinator.h"

namespace miroir::coordinator {

// Sets every coordinator gauge from `core`'s current state into `registry`.
void RefreshCoordinatorMetrics(Coordinator& core, MetricsRegistry& registry);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_COORDINATOR_METRICS_H_
