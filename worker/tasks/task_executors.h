// Executors of the tasks the coordinator leases (docs/task-protocol.md):
// PREPARE, BACKFILL, CATCH_UP, FENCE, FINAL_DELTA, CLEANUP, RECONCILE, VERIFY,
// AE_PASS (as RECONCILE). Each runs on the task's own thread, carries
// task.epoch on every store op, checkpoints through TaskContext, and stops when
// the context says the task was cancelled or its checkpoint refused.
#ifndef MIROIR_WORKER_TASKS_TASK_EXECUTORS_H_
#define MIROIR_WORKER_TASKS_TASK_EXECUTORS_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "miroir/v1/types.pb.h"
#include "worker/stores/store_adapter.h"
#include "worker/tasks/merged_scan.h"

namespace miroir {

// What an executor needs from the runner.
struct TaskContext {
  v1::Task task;
  // The adapter of node `id`; NOT_FOUND when unknown.
  std::function<absl::StatusOr<std::shared_ptr<StoreAdapter>>(const std::string&)> store;
  // Sends a progress checkpoint; returns false when the task must stop.
  std::function<bool(const v1::Checkpoint&)> checkpoint;
  // True once cancelled or a checkpoint was refused.
  std::function<bool()> cancelled;
  // Called with the number of documents copied, for metrics.
  std::function<void(uint64_t)> on_copied;
};

// Runs the task. Errors: UNAVAILABLE (a node unreachable: retryable),
// FAILED_PRECONDITION (e.g. "incarnation changed: ...", fenced: not retryable),
// CANCELLED (stopped; nothing is reported), INVALID_ARGUMENT (malformed task).
absl::StatusOr<v1::TaskResult> RunTask(const TaskContext& ctx);

struct ReconcileOptions {
  uint64_t epoch = 0;
  uint32_t batch_size = 1000;
  bool repair = true;
  uint64_t throttle_docs_per_s = 0;
  std::function<bool()> cancelled;
};

// Reconcile(sources, targets) for one shard: a merged keyset scan of every
// replica of sources ∪ targets; per pk the highest version seen (a tombstone
// beats an older put) is the truth; each target without exactly that version is
// a mismatch and, when `repair`, gets it by put_if_newer. Result: mismatches,
// divergent_keys (<= 100), documents (repaired), digests per replica (before
// repair).
absl::StatusOr<v1::TaskResult> Reconcile(const ShardKey& shard, const std::vector<Replica>& sources,
                                         const std::vector<Replica>& targets,
                                         const ReconcileOptions& options);

}  // namespace miroir

#endif  // MIROIR_WORKER_TASKS_TASK_EXECUTORS_H_
