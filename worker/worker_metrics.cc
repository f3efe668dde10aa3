#include "worker/worker_metrics.h"

#include "common/metrics.h"

namespace miroir {

void WorkerMetrics::Start() {
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(500))) Sample();
  });
}

void WorkerMetrics::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void WorkerMetrics::Sample() {
  auto& reg = MetricsRegistry::Default();
  const WritePathCounters& c = writes_->counters();
  // Counters are exported as gauges of the cumulative value (the registry's
  // counters only increase by deltas; sampling a total is simpler and exact).
  reg.GetGauge("miroir_worker_writes_total", "Write items received.").Set(c.writes.load());
  reg.GetGauge("miroir_worker_acks_total", "Write items acknowledged OK.", {{"result", "ok"}})
      .Set(c.acks_ok.load());
  reg.GetGauge("miroir_worker_acks_total", "Write items answered with an error.",
               {{"result", "error"}})
      .Set(c.acks_error.load());
  reg.GetGauge("miroir_worker_degraded_total", "Acknowledged writes with a degraded group.")
      .Set(c.degraded.load());
  reg.GetGauge("miroir_worker_fenced_retries_total", "Write rounds re-routed after a fence.")
      .Set(c.fenced_retries.load());
  reg.GetGauge("miroir_worker_restamps_total", "Re-stamps after stored-is-newer.")
      .Set(c.restamps.load());
  reg.GetGauge("miroir_worker_inflight_writes", "Writes fanned out, not yet answered.")
      .Set(inflight_->Total());
  reg.GetGauge("miroir_worker_held_writes", "Writes held for paused shards.").Set(c.held.load());
  if (tasks_ != nullptr) {
    reg.GetGauge("miroir_worker_task_documents_copied_total", "Documents copied by tasks.")
        .Set(tasks_->documents_copied());
    reg.GetGauge("miroir_worker_running_tasks", "Tasks running.").Set(tasks_->running());
  }
}

}  // namespace miroir
