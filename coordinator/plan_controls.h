// Live controls on a plan that already runs (issue 22 item 3): a new throttle or
// schedule window, and a forced cutover of moves whose catch-up does not
// converge. Pure decisions over a ClusterState snapshot, written into a Change;
// the Coordinator commits it and re-leases the copy tasks the new throttle must
// reach. No I/O, no locking.
#ifndef MIROIR_COORDINATOR_PLAN_CONTROLS_H_
#define MIROIR_COORDINATOR_PLAN_CONTROLS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/cluster_state.h"
#include "coordinator/config.h"
#include "miroir/v1/coordinator.pb.h"

namespace miroir::coordinator {

// Records `req` on its plan: throttle_docs_per_s (> 0) on the plan and on every
// task of its unfinished moves, schedule_window ("" = the config's windows) on
// the plan, one event naming old and new values. `relaunch` gets the copy tasks
// (backfill, catch-up) whose run must restart from its checkpoint to take the new
// throttle. INVALID_ARGUMENT naming the field (throttle ≤ 0, malformed or unknown
// window, nothing to change); NOT_FOUND unknown plan; FAILED_PRECONDITION a plan
// that ended or is aborting. On an error `change` is left as it was.
absl::Status PlanUpdateChange(const ClusterState& state, const v1::UpdatePlanRequest& req,
                              const CoordinatorConfig& config, int64_t now_ms, Change* change,
                              std::vector<uint64_t>* relaunch);

// Marks every move of plan `id` in catching_up to cut over after its current pass
// whatever is left (Move.force_cutover), with an event. Refused as a real cutover
// would be: INVALID_ARGUMENT without `force`; NOT_FOUND unknown plan;
// FAILED_PRECONDITION a plan not running, no move catching up, or the delta-skip
// gate (a plan that skips the delta pass while anti-entropy is off: force never
// bypasses it). The stall limits still apply to the cutover itself. On an error
// `change` is left as it was.
absl::Status ForcedCutoverChange(const ClusterState& state, uint64_t id, bool force,
                                 const CoordinatorConfig& config, int64_t now_ms, Change* change);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_PLAN_CONTROLS_H_
