// The AE_PASS task executor (DESIGN §8, docs/anti-entropy.md): one anti-entropy
// pass over one shard across every replica listed in the task (sources ∪ targets).
//
//  1. every replica is scanned once, in parallel, into bucketed digests
//     (task.ae_buckets buckets); equal roots and no expired document → done,
//     nothing is written;
//  2. otherwise one merged scan visits the keys of the divergent buckets only and
//     decides each (ae_logic.h); when task.repair, the replicas that differ get the
//     truth at its own version, carrying task.epoch (a repair, not a client write);
//  3. when task.repair and task.purge_tombstones_before_ms > 0, after the repair:
//     every replica purges the tombstones applied before
//     min(purge_tombstones_before_ms, the pass's start) — the pass read every
//     replica after those tombstones were applied and repaired the others.
//
// Runs on the task's thread (it starts one reader thread per replica for step 1);
// holds no lock across store calls.
#ifndef MIROIR_WORKER_TASKS_AE_PASS_H_
#define MIROIR_WORKER_TASKS_AE_PASS_H_

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "miroir/v1/types.pb.h"
#include "worker/tasks/task_executors.h"

namespace miroir {

// Runs the pass. Result: mismatches, divergent_keys (<= 100), documents (repair
// writes), divergent_buckets, conflicts, unresolved_conflicts, expired,
// purged_tombstones, replicas_reached, digests (per replica, before repair).
// Errors: UNAVAILABLE (a replica unreachable: nothing is purged), FAILED_PRECONDITION
// (fenced), CANCELLED, INVALID_ARGUMENT (no replicas).
absl::StatusOr<v1::TaskResult> RunAePass(const TaskContext& ctx,
                                         const Clock* clock = SystemClock::Default());

}  // namespace miroir

#endif  // MIROIR_WORKER_TASKS_AE_PASS_H_
