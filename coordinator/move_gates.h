// Safety gates of DESIGN §6, as pure checks returning FAILED_PRECONDITION with a
// one-line message naming what blocked. No I/O; safe from any thread.
#ifndef MIROIR_COORDINATOR_MOVE_GATES_H_
#define MIROIR_COORDINATOR_MOVE_GATES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/cluster_state.h"
#include "coordinator/config.h"
#include "coordinator/schedule_window.h"

namespace miroir::coordinator {

// (a) Skipping the delta pass while anti-entropy is off. `force` is deliberately
// not a parameter: it never bypasses this gate. Only the test-only override in the
// config (--test-allow-unsafe-skip-delta) does.
absl::Status CheckDeltaSkipGate(bool skip_delta_pass, const CoordinatorConfig& config);

// (b) The windows a plan must respect: `plan_window` (a name or range) when set,
// else migration.allowed_windows. INVALID_ARGUMENT for an unknown name or a
// malformed range.
absl::StatusOr<std::vector<TimeWindow>> PlanWindows(const std::string& plan_window,
                                                    const CoordinatorConfig& config);
// Refuses a start outside every window unless `force`.
absl::Status CheckWindowGate(const std::vector<TimeWindow>& windows, int64_t now_ms, bool force);

// What the workers last reported about a node.
struct NodeHealth {
  bool reachable = true;
  std::string incarnation;
  // Shard stats: (index, generation, shard) -> {documents, bytes}.
  std::map<std::tuple<std::string, uint64_t, uint32_t>, std::pair<uint64_t, uint64_t>> shards;
  uint64_t total_bytes = 0;     // body bytes of the shards it holds (shard stats)
  uint64_t capacity_bytes = 0;  // the store's memory limit; 0 unknown
  uint64_t used_bytes = 0;      // memory the store reports using (0 unknown)
  // Durability settings the last reachable probe read (empty: not read).
  std::map<std::string, std::string> store_config;
  int64_t reported_ms = 0;  // coordinator clock at the last report
};

// (c) Capacity: every target node with a known capacity must hold its current
// bytes (the larger of its shard bytes and the store's own used memory) plus the
// bytes moving to it plus `headroom_fraction` of its capacity.
absl::Status CheckCapacityGate(const std::vector<v1::Move>& moves,
                               const std::map<std::string, NodeHealth>& health,
                               double headroom_fraction = 0.1);

// (d) Target health: a joining node a worker reported unreachable, or a node
// marked failed, cannot receive a move — except `rejoining`, the failed node a
// rejoin plan copies back (DESIGN §6), which must still be reachable.
absl::Status CheckTargetHealthGate(const std::vector<v1::Move>& moves, const ClusterState& state,
                                   const std::map<std::string, NodeHealth>& health,
                                   const std::string& rejoining = "");

// Conflicts: a move touching a shard another unfinished move touches, or an index
// whose reshard is active or in retention (a SHADOW or RETAINED generation),
// unless the plan is a restore.
absl::Status CheckConflictGate(const std::vector<v1::Move>& moves, v1::PlanKind kind,
                               const ClusterState& state);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_MOVE_GATES_H_
