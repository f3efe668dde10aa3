// Executors of the resharding tasks (DESIGN §7, docs/task-protocol.md
// "Resharding tasks"):
//
//  - RESHARD_BACKFILL / RESHARD_DELTA read one shard of the source generation
//    (task.index, task.generation, task.shard) exactly as BACKFILL / CATCH_UP /
//    FINAL_DELTA do, and put_if_newer every entry (tombstones too, at the
//    source's version) into the write set, all groups, of its shard under
//    task.target_route's S;
//  - RESHARD_VERIFY compares two whole generations (task.source_route merged by
//    version vs every owner of task.target_route) by pk buckets, read only.
//
// Each runs on the task's own thread and carries task.epoch on every store op;
// no lock is held across a store call.
#ifndef MIROIR_WORKER_TASKS_RESHARD_TASKS_H_
#define MIROIR_WORKER_TASKS_RESHARD_TASKS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "miroir/v1/types.pb.h"
#include "worker/stores/store_adapter.h"
#include "worker/tasks/task_executors.h"

namespace miroir {

// Result: watermarks (W per source), documents. Errors as RunTask's; a malformed
// target_route is INVALID_ARGUMENT naming the field.
absl::StatusOr<v1::TaskResult> RunReshardBackfill(const TaskContext& ctx);

// CATCH_UP semantics when task.upto is empty, FINAL_DELTA's (W, F] when set.
// Result: watermarks (new W), documents = remaining = entries copied this pass.
// A node-batched task (task.batch: the swap's final delta from one source,
// sources[0]) copies (W, F] of every listed shard with one pipelined read per
// page round and one write per target node; result.batch has W reached and the
// entries copied per shard. A W, F or node of another incarnation is
// IncarnationChangedError.
absl::StatusOr<v1::TaskResult> RunReshardDelta(const TaskContext& ctx);

// Result: mismatches, divergent_keys (<= 100, sorted), newer_in_source,
// divergent_buckets, documents (keys compared), replicas_reached, digests (one
// per target node over everything it holds of the target generation).
absl::StatusOr<v1::TaskResult> RunReshardVerify(const TaskContext& ctx);

// Which per-shard node set of a route a task uses.
enum class RouteSet { kWriteSet, kOwners };

// OK when `route` (the task's field `field`, `present` = it was set) names an
// index, S > 0, one route per shard in shard order, and every shard has at least
// one node in `set`; else INVALID_ARGUMENT naming the field, e.g.
// "target_route.shards: 0".
absl::Status ValidateGenerationRoute(const v1::GenerationRoute& route, bool present,
                                     const std::string& field, RouteSet set);

// The distinct nodes of `set` of one shard route, over every group, in group
// order.
std::vector<std::string> RouteNodes(const v1::ShardRoute& route, RouteSet set);

// Pure: groups `muts` by node for put_if_newer into `target`: each mutation goes
// to ShardForKey(pk, target.shards()) on every node of that shard's write set
// (every group). Per node, one batch per target shard in shard order, mutations
// in their input order. REQUIRES: ValidateGenerationRoute(target, ..., kWriteSet).
std::map<std::string, std::vector<ShardMutations>> RouteMutations(
    const v1::GenerationRoute& target, const std::vector<Mutation>& muts);

}  // namespace miroir

#endif  // MIROIR_WORKER_TASKS_RESHARD_TASKS_H_
