// WorkerMetrics: publishes the worker's counters (writes, acks, degraded, fenced
// retries, re-stamps, in-flight, held writes, task documents copied) to the
// Prometheus registry of common/metrics.h, sampling them every 500 ms on its
// own thread. Sample() is called from that thread only (or once before Start).
#ifndef MIROIR_WORKER_WORKER_METRICS_H_
#define MIROIR_WORKER_WORKER_METRICS_H_

#include <map>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "worker/inflight_tracker.h"
#include "worker/tasks/task_runner.h"
#include "worker/write_path.h"

namespace miroir {

class WorkerMetrics {
 public:
  WorkerMetrics(const WritePath* writes, const InflightTracker* inflight, const TaskRunner* tasks)
      : writes_(writes), inflight_(inflight), tasks_(tasks) {}
  ~WorkerMetrics() { Stop(); }
  void Start();
  void Stop();
  // Copies the current values into the registry once.
  void Sample();

 private:
  const WritePath* writes_;
  const InflightTracker* inflight_;
  const TaskRunner* tasks_;
  absl::Notification stop_;
  std::thread thread_;
  std::map<std::string, uint64_t> last_;  // sampler thread only
};

}  // namespace miroir

#endif  // MIROIR_WORKER_WORKER_METRICS_H_
