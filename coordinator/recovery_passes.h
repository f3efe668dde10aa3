// Recovery passes (DESIGN §4): the TASK_RECONCILE tasks without a move
// (move_id 0, repair) that bring replicas which missed writes back up to date
// from the other nodes of their shard's write set, whether or not periodic
// anti-entropy is on. Two shapes:
//
//   - a miss pass has exactly one target: a node a worker reported as having
//     missed a write to the shard. It is the node known stale: the read path
//     leaves it out of the shard's read set while the pass is pending.
//   - a shard pass targets every write-set node of the shard (each replica is
//     compared with all the others): scheduled for every shard when a worker
//     session ended with misses possibly unreported (crash, lapsed lease). No
//     node is known stale, so it excludes nothing from reads.
//
// A pass is never given up while its shard still needs it: a failure (a node
// unreachable, a fence raised by a cutover) is retried with backoff, and before
// each run its sources and targets are recomputed from the shard's current
// route, so a pass fenced by a cutover runs again at the new epoch on the
// shard's current owners. It is dropped only when its target was marked failed
// (the restore covers it) or no write-set node is left to repair.
//
// Pure functions over ClusterState, no I/O; the Coordinator (miss reports, worker
// session ends) and the PlanRunner (each tick) apply what they return.
#ifndef MIROIR_COORDINATOR_RECOVERY_PASSES_H_
#define MIROIR_COORDINATOR_RECOVERY_PASSES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "coordinator/cluster_state.h"

namespace miroir::coordinator {

// A recovery pass: TASK_RECONCILE without a move.
bool IsRecoveryPass(const v1::Task& t);
// A recovery pass with exactly one target (the node known to have missed writes).
bool IsMissPass(const v1::Task& t);
// Not started yet: pending, or failed and waiting for its retry. Its next run
// scans the whole shard from the start, so it sees every write applied before
// that run begins. A leased pass may already have passed a key.
bool NotStarted(const TaskRecord& t);

// The route of (generation, shard) as the caller's pending change leaves it, or
// nullptr when the shard does not exist.
using RouteOf = std::function<const v1::ShardRoute*(uint64_t generation, uint32_t shard)>;
// RouteOf over `s` alone.
RouteOf StateRoutes(const ClusterState& s);

// Sources and targets `pass` should have now, over `route`: a miss pass keeps its
// target while it is in the write set; a target that left it (its shard moved
// away) is replaced by its group's current write-set nodes, which inherited its
// copy; a failed target drops the pass. A shard pass targets every write-set
// node. Sources: every other write-set node. nullopt: the pass is no longer
// needed (target failed, generation no longer written, nothing left to repair).
// The returned task keeps id, epoch, lease generation and batch size.
std::optional<v1::Task> RecomputeRecoveryPass(const ClusterState& s, const v1::Task& pass,
                                              const v1::ShardRoute& route);

// Adds to `change` a miss pass for each (node, generation, shard) of `report`
// (a miss with `all_shards`: every shard of every written generation whose write
// set holds the node), unless an unstarted miss pass already targets that node
// on that shard (in `s` or earlier in `change`). Misses naming an unknown node,
// index or shard, or a node not in the shard's write set, are skipped.
// Returns how many passes were added.
uint32_t ScheduleMissPasses(const ClusterState& s, const v1::MissReport& report,
                            uint32_t batch_size, Change* change);

// Adds to `change` a shard pass for every shard of every written generation
// (live, shadow, retained), unless an unstarted shard pass covers the shard.
// Returns how many were added.
uint32_t ScheduleShardPasses(const ClusterState& s, uint32_t batch_size, Change* change);

// What one tick does with an existing recovery pass.
struct RecoveryPassStep {
  enum class Action { kKeep, kUpdate, kDelete };
  Action action = Action::kKeep;
  v1::Task task;       // kUpdate: the pass with recomputed sources and targets
  std::string reason;  // kDelete: why (for the log)
};
// Done: delete. Leased: keep. Pending or failed: recompute over the route as
// this tick leaves it (`routes`); delete when no longer needed, update when its
// nodes changed. A failed pass is leased again after its backoff, whatever its
// failure count (PlanRunner::ReleaseTasks).
RecoveryPassStep StepRecoveryPass(const ClusterState& s, const TaskRecord& t,
                                  const RouteOf& routes);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_RECOVERY_PASSES_H_
