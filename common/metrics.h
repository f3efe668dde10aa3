// A tiny Prometheus metrics registry (counters, gauges, histograms, with labels)
// rendered in the text exposition format 0.0.4, and an HTTP endpoint serving it
// on `GET /metrics` (cpp-httplib).
//
// Usage:
//   auto& copied = MetricsRegistry::Default().GetCounter(
//       "miroir_documents_copied_total", "Documents copied by tasks.", {{"kind", "backfill"}});
//   copied.Inc(n);
//   auto port = StartMetricsServer(flags.metrics_listen);  // "" = disabled, returns 0
//
// Thread-safety: everything here may be called from any thread. The references
// returned by Get* stay valid for the registry's lifetime (the default registry
// lives for the whole process), so hot paths look a series up once and keep it.
#ifndef MIROIR_COMMON_METRICS_H_
#define MIROIR_COMMON_METRICS_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace miroir {

// Label name -> value. Names follow [a-zA-Z_][a-zA-Z0-9_]*; values are any text.
using MetricLabels = std::map<std::string, std::string>;

// A monotonically increasing value (reset only by a process restart).
class Counter {
 public:
  // REQUIRES: v >= 0 (a negative increment is ignored).
  void Inc(double v = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1);
  void Dec(double v = 1) { Inc(-v); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into cumulative buckets (upper bounds, "le"), plus sum and count.
class Histogram {
 public:
  // REQUIRES: `bounds` strictly increasing and finite; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Snap() const;

 private:
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> counts_ ABSL_GUARDED_BY(mu_);  // per bucket, +Inf last
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
};

// Prometheus' default buckets, in seconds: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10.
std::vector<double> DefaultLatencyBuckets();

// A set of metric families. A family is one name with one type and help text;
// each distinct label set is one series in it.
class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The process-wide registry the programs and StartMetricsServer use.
  static MetricsRegistry& Default();

  // Returns the series of family `name` with `labels`, creating either on first
  // use. REQUIRES: a name is always used with the same type (and, for a
  // histogram, the same bounds); a mismatch is a programming error and aborts.
  Counter& GetCounter(std::string_view name, std::string_view help,
                      const MetricLabels& labels = {});
  Gauge& GetGauge(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  Histogram& GetHistogram(std::string_view name, std::string_view help,
                          const std::vector<double>& bounds = DefaultLatencyBuckets(),
                          const MetricLabels& labels = {});

  // Drops every gauge series of family `name` whose label set is not in `keep`
  // (series of things that ended, e.g. the moves of a finished plan). REQUIRES:
  // nobody holds a reference to a dropped series (look such gauges up each time).
  void RetainGauges(std::string_view name, const std::vector<MetricLabels>& keep);

  // Text exposition format 0.0.4: families sorted by name, series by labels.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> bounds;  // histograms only
    // Keyed by the rendered label set ({a="x",b="y"}), which sorts stably.
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
    std::map<std::string, MetricLabels> labels;
  };
  Family& FamilyFor(std::string_view name, std::string_view help, Type type,
                    const std::vector<double>& bounds) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mu_);
};

// An HTTP server answering `GET /metrics` with a registry's Render(). Stops and
// joins its thread on destruction.
class MetricsServer {
 public:
  // `listen` is "HOST:PORT" (port 0 = OS-assigned). INVALID_ARGUMENT naming
  // --metrics-listen on malformed text, UNAVAILABLE when it cannot bind.
  // `registry` is not owned and must outlive the server.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              MetricsRegistry* registry);
  ~MetricsServer();
  int port() const { return port_; }

 private:
  struct Impl;
  MetricsServer() = default;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// Starts the process-wide metrics server on `listen` serving the default
// registry and returns the bound port; "" = disabled, returns 0. At most one
// process-wide server: a second call is FAILED_PRECONDITION. It runs until exit.
absl::StatusOr<int> StartMetricsServer(const std::string& listen);

}  // namespace miroir

#endif  // MIROIR_COMMON_METRICS_H_
