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
  // Cumulative values become counters by adding what changed since the last sample.
  auto add = [this](Counter& counter, const char* key, uint64_t now) {
    uint64_t& last = last_[key];
    if (now > last) counter.Inc(static_cast<double>(now - last));
    last = now;
  };
  add(reg.GetCounter("miroir_worker_writes_total", "Write items received."), "writes",
      c.writes.load());
  add(reg.GetCounter("miroir_worker_acks_total", "Write items answered, by result.",
                     {{"result", "ok"}}),
      "acks_ok", c.acks_ok.load());
  add(reg.GetCounter("miroir_worker_acks_total", "Write items answered, by result.",
                     {{"result", "error"}}),
      "acks_error", c.acks_error.load());
  add(reg.GetCounter("miroir_worker_degraded_total", "Acknowledged writes with a degraded group."),
      "degraded", c.degraded.load());
  add(reg.GetCounter("miroir_worker_fenced_retries_total", "Write rounds re-routed after a fence."),
      "fenced", c.fenced_retries.load());
  add(reg.GetCounter("miroir_worker_restamps_total", "Re-stamps after stored-is-newer."),
      "restamps", c.restamps.load());
  reg.GetGauge("miroir_worker_inflight_writes", "Writes fanned out, not yet answered.")
      .Set(static_cast<double>(inflight_->Total()));
  reg.GetGauge("miroir_worker_held_writes", "Writes held for paused shards.")
      .Set(static_cast<double>(c.held.load()));
  const NodeHealthCounters& h = writes_->health()->counters();
  reg.GetGauge("miroir_worker_suspected_nodes",
               "Store nodes suspected slow or stopped (not waited for past straggler_bound).")
      .Set(static_cast<double>(writes_->health()->SuspectedCount()));
  add(reg.GetCounter("miroir_worker_node_suspicions_total", "Store nodes that became suspected."),
      "suspicions", h.suspicions.load());
  add(reg.GetCounter("miroir_worker_node_suspicions_cleared_total",
                     "Suspicions a probe cleared (the node answered in time again)."),
      "clears", h.clears.load());
  add(reg.GetCounter("miroir_worker_straggler_sends_total",
                     "Sends to suspected nodes not waited for past straggler_bound (misses)."),
      "stragglers", h.straggler_sends.load());
  add(reg.GetCounter("miroir_worker_straggler_skipped_total",
                     "Sends not made to suspected nodes with max_inflight outstanding (misses)."),
      "skipped", h.skipped_sends.load());
  add(reg.GetCounter("miroir_worker_straggler_late_newer_total",
                     "Late 'stored is newer' answers of stragglers (HLC advanced, miss reported)."),
      "late_newer", h.late_newer.load());
  add(reg.GetCounter("miroir_worker_read_node_timeouts_total",
                     "Reads that moved on to the next read-set node past read_node_timeout."),
      "read_timeouts", h.read_timeouts.load());
  if (tasks_ != nullptr) {
    add(reg.GetCounter("miroir_worker_task_documents_copied_total", "Documents copied by tasks."),
        "copied", tasks_->documents_copied());
    Counter& yielded = reg.GetCounter("miroir_worker_task_cutover_yield_seconds_total",
                                      "Time bulk task pages waited for cutovers on their nodes.");
    const auto yield_us = static_cast<uint64_t>(absl::ToInt64Microseconds(tasks_->cutover_yield()));
    uint64_t& last_yield_us = last_["cutover_yield_us"];
    if (yield_us > last_yield_us) {
      yielded.Inc(static_cast<double>(yield_us - last_yield_us) / 1e6);
      last_yield_us = yield_us;
    }
    reg.GetGauge("miroir_worker_running_tasks", "Tasks running.")
        .Set(static_cast<double>(tasks_->running()));
  }
}

}  // namespace miroir
