// Executors of the tasks the coordinator leases (docs/task-protocol.md):
// PREPARE, BACKFILL, CATCH_UP, FENCE, FINAL_DELTA, CLEANUP, RECONCILE, VERIFY,
// AE_PASS (as RECONCILE), and the RESHARD_* kinds (reshard_tasks.h). Each runs
// on the task's own thread, carries task.epoch on every store op, checkpoints
// through TaskContext, and stops when the context says the task was cancelled
// or its checkpoint refused.
#ifndef MIROIR_WORKER_TASKS_TASK_EXECUTORS_H_
#define MIROIR_WORKER_TASKS_TASK_EXECUTORS_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
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
  // Called between the pages of a bulk task; returns when it may go on (it waits
  // while a cutover holds writes on the task's nodes: cutover_yield.h). Unset:
  // never waits (the cutover's own tasks).
  std::function<void()> yield;
};

// Runs the task. Errors: UNAVAILABLE (a node unreachable: retryable),
// FAILED_PRECONDITION (e.g. IncarnationChangedError, fenced: not retryable),
// CANCELLED (stopped; nothing is reported), INVALID_ARGUMENT (malformed task).
absl::StatusOr<v1::TaskResult> RunTask(const TaskContext& ctx);

// The mutation that writes `d` as stored (its version, tombstone and expiry).
Mutation ToMutation(const StoredDoc& d);

// Where a copy loop puts what it read: applies one page of mutations (the newest
// copy of each pk, tombstones included) at the task's epoch. A fenced answer is
// FAILED_PRECONDITION; an unreachable node UNAVAILABLE, its id leading the message.
using MutationSink = std::function<absl::Status(const std::vector<Mutation>&)>;
// Opens the sink (resolving its nodes); called once, before the first page.
using SinkFactory = std::function<absl::StatusOr<MutationSink>()>;

// The BACKFILL loop of task.(index, generation, shard): when the checkpoint has
// no watermarks, records W of every source and checkpoints it first; then pages
// the shard from every source from checkpoint.cursor, merged by version, into
// the sink, checkpointing cursor + documents after each page (throttled).
// Result: watermarks (W per source), documents. RESHARD_BACKFILL shares it.
absl::StatusOr<v1::TaskResult> CopyShard(const TaskContext& ctx, const SinkFactory& open_sink);

// The CATCH_UP (`final_delta` false: up to each source's current seq) and
// FINAL_DELTA (up to F in task.upto) loop: ChangedSince(W) of every source in the
// checkpoint's watermarks into the sink. A W from another incarnation is
// IncarnationChangedError (worker/tasks/task_failure.h). Result: watermarks (new W),
// documents = remaining = entries copied in this pass. RESHARD_DELTA shares it.
absl::StatusOr<v1::TaskResult> CopyChanges(const TaskContext& ctx, bool final_delta,
                                           const SinkFactory& open_sink);

// Paces a copy loop: at or below `docs_per_s` (0 = unthrottled), waking early
// when `cancelled` turns true, and stepping aside for cutovers through `yield`
// (may be unset). One thread.
class Throttle {
 public:
  Throttle(uint64_t docs_per_s, std::function<bool()> cancelled,
           std::function<void()> yield = nullptr);
  // Accounts `docs` more, yields, and sleeps until the rate allows them.
  void Account(uint64_t docs);

 private:
  uint64_t rate_;
  std::function<bool()> cancelled_;
  std::function<void()> yield_;
  absl::Time start_;
  uint64_t done_ = 0;
};

struct ReconcileOptions {
  uint64_t epoch = 0;
  uint32_t batch_size = 1000;
  bool repair = true;
  uint64_t throttle_docs_per_s = 0;
  std::function<bool()> cancelled;
  std::function<void()> yield;  // as TaskContext::yield
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
