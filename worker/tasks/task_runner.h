// TaskRunner: runs the tasks the coordinator leases, one thread per task, and
// reports progress/complete/failed on the session (docs/task-protocol.md). A
// refused checkpoint (accepted=false) or a cancel stops the task silently; a
// re-lease of a running task id with a higher lease generation replaces it.
//
// Thread-safe: the session's reader thread calls the TaskSink methods.
#ifndef MIROIR_WORKER_TASKS_TASK_RUNNER_H_
#define MIROIR_WORKER_TASKS_TASK_RUNNER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "miroir/v1/worker_control.pb.h"
#include "worker/coordinator_session.h"
#include "worker/node_stores.h"
#include "worker/router.h"

namespace miroir {

// A task's first checkpoint (its W) is sent at once; later ones at most this
// often. Each one the coordinator takes is a state commit, and a cutover's own
// commits queue behind them; a resume from an older cursor re-copies a few pages
// (copies are idempotent).
inline constexpr absl::Duration kCheckpointInterval = absl::Milliseconds(250);

class TaskRunner : public TaskSink {
 public:
  using SendFn = std::function<bool(const v1::WorkerMessage&)>;
  // How many tasks run at once is the coordinator's decision (it leases at most
  // the max_tasks the session registered with), not the runner's.
  TaskRunner(Router* router, NodeStores* stores, SendFn send,
             absl::Duration checkpoint_interval = kCheckpointInterval);
  // Convenience: sends on `session`.
  TaskRunner(Router* router, NodeStores* stores, CoordinatorSession* session);
  ~TaskRunner() override;

  void OnTask(const v1::Task& task) override;
  void OnCancel(uint64_t task_id) override;
  void OnCheckpointAck(uint64_t task_id, uint64_t lease_generation, bool accepted) override;
  // Cancels every task and joins their threads.
  void Stop();

  size_t running() const;
  uint64_t documents_copied() const { return copied_.load(); }
  // Time bulk tasks spent waiting for cutovers on their nodes (cutover_yield.h).
  absl::Duration cutover_yield() const { return absl::Microseconds(yield_us_.load()); }

 private:
  struct Running {
    v1::Task task;
    std::atomic<bool> cancelled{false};
    std::atomic<bool> finished{false};
    std::thread thread;
    absl::Time last_checkpoint = absl::InfinitePast();  // only the task's thread
  };
  void Run(std::shared_ptr<Running> r);
  // Returns once no cutover holds writes on `r`'s nodes, after kMaxCutoverYield,
  // or when `r` is cancelled; wakes on each new view.
  void YieldToCutovers(const Running& r);
  // Sends, retrying while disconnected, until sent, cancelled or stopped.
  void SendFinal(const Running& r, const v1::WorkerMessage& msg);
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Router* router_;
  NodeStores* stores_;
  SendFn send_;
  const absl::Duration checkpoint_interval_;
  std::atomic<uint64_t> copied_{0};
  std::atomic<uint64_t> yield_us_{0};
  std::atomic<bool> stopping_{false};
  mutable absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<Running>> tasks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Running>> retired_ ABSL_GUARDED_BY(mu_);
};

}  // namespace miroir

#endif  // MIROIR_WORKER_TASKS_TASK_RUNNER_H_
