#include "common/metrics.h"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace miroir {
namespace {

void AtomicAdd(std::atomic<double>* a, double v) {
  double cur = a->load(std::memory_order_relaxed);
  while (!a->compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

// Go-style float text as Prometheus expects: integers without exponent when exact.
std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  // Prefer the shortest text that round-trips.
  for (int prec = 1; prec <= 17; ++prec) {
    char shorter[32];
    std::snprintf(shorter, sizeof(shorter), "%.*g", prec, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

std::string EscapeLabelValue(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} plus an optional extra label (histogram "le"); "" when empty.
std::string RenderLabels(const MetricLabels& labels, std::string_view extra_name = {},
                         std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    first = false;
    absl::StrAppend(&out, k, "=\"", EscapeLabelValue(v), "\"");
  }
  if (!extra_name.empty()) {
    if (!first) out += ",";
    out.append(extra_name).append("=\"").append(extra_value).append("\"");
  }
  out += "}";
  return out;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "metrics: %s\n", what.c_str());
  std::abort();
}

}  // namespace

void Counter::Inc(double v) {
  if (v < 0) return;
  AtomicAdd(&value_, v);
}

void Gauge::Inc(double v) { AtomicAdd(&value_, v); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  absl::MutexLock l(&mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot s;
  s.bounds = bounds_;
  absl::MutexLock l(&mu_);
  uint64_t acc = 0;
  for (uint64_t c : counts_) {
    acc += c;
    s.cumulative.push_back(acc);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

MetricsRegistry& MetricsRegistry::Default() {
  static auto* registry = new MetricsRegistry();
  return *registry;
}

MetricsRegistry::Family& MetricsRegistry::FamilyFor(std::string_view name, std::string_view help,
                                                    Type type, const std::vector<double>& bounds) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    for (size_t i = 1; i < bounds.size(); ++i) {
      if (!(bounds[i - 1] < bounds[i]))
        Die(absl::StrCat(std::string(name), ": buckets not increasing"));
    }
    Family f{type, std::string(help), bounds, {}, {}, {}, {}};
    it = families_.emplace(std::string(name), std::move(f)).first;
  }
  if (it->second.type != type)
    Die(absl::StrCat(std::string(name), ": registered with another type"));
  if (type == Type::kHistogram && it->second.bounds != bounds) {
    Die(absl::StrCat(std::string(name), ": registered with other buckets"));
  }
  return it->second;
}

Counter& MetricsRegistry::GetCounter(std::string_view name, std::string_view help,
                                     const MetricLabels& labels) {
  absl::MutexLock l(&mu_);
  Family& f = FamilyFor(name, help, Type::kCounter, {});
  auto key = RenderLabels(labels);
  auto& slot = f.counters[key];
  if (!slot) {
    slot = std::make_unique<Counter>();
    f.labels[key] = labels;
  }
  return *slot;
}

Gauge& MetricsRegistry::GetGauge(std::string_view name, std::string_view help,
                                 const MetricLabels& labels) {
  absl::MutexLock l(&mu_);
  Family& f = FamilyFor(name, help, Type::kGauge, {});
  auto key = RenderLabels(labels);
  auto& slot = f.gauges[key];
  if (!slot) {
    slot = std::make_unique<Gauge>();
    f.labels[key] = labels;
  }
  return *slot;
}

void MetricsRegistry::RetainGauges(std::string_view name, const std::vector<MetricLabels>& keep) {
  std::set<std::string> kept;
  for (const auto& labels : keep) kept.insert(RenderLabels(labels));
  absl::MutexLock l(&mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  Family& f = it->second;
  for (auto g = f.gauges.begin(); g != f.gauges.end();) {
    if (kept.count(g->first)) {
      ++g;
      continue;
    }
    f.labels.erase(g->first);
    g = f.gauges.erase(g);
  }
}

Histogram& MetricsRegistry::GetHistogram(std::string_view name, std::string_view help,
                                         const std::vector<double>& bounds,
                                         const MetricLabels& labels) {
  absl::MutexLock l(&mu_);
  Family& f = FamilyFor(name, help, Type::kHistogram, bounds);
  auto key = RenderLabels(labels);
  auto& slot = f.histograms[key];
  if (!slot) {
    slot = std::make_unique<Histogram>(bounds);
    f.labels[key] = labels;
  }
  return *slot;
}

std::string MetricsRegistry::Render() const {
  std::string out;
  absl::MutexLock l(&mu_);
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(f.help), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", type, "\n");
    for (const auto& [key, c] : f.counters) {
      absl::StrAppend(&out, name, key, " ", FormatValue(c->Value()), "\n");
    }
    for (const auto& [key, g] : f.gauges) {
      absl::StrAppend(&out, name, key, " ", FormatValue(g->Value()), "\n");
    }
    for (const auto& [key, h] : f.histograms) {
      const MetricLabels& labels = f.labels.at(key);
      Histogram::Snapshot s = h->Snap();
      for (size_t i = 0; i < s.bounds.size(); ++i) {
        absl::StrAppend(&out, name, "_bucket", RenderLabels(labels, "le", FormatValue(s.bounds[i])),
                        " ", s.cumulative[i], "\n");
      }
      absl::StrAppend(&out, name, "_bucket", RenderLabels(labels, "le", "+Inf"), " ", s.count,
                      "\n");
      absl::StrAppend(&out, name, "_sum", key, " ", FormatValue(s.sum), "\n");
      absl::StrAppend(&out, name, "_count", key, " ", s.count, "\n");
    }
  }
  return out;
}

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> finished{false};
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    MetricsRegistry* registry) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen: expected HOST:PORT, got '", listen, "'"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::unique_ptr<MetricsServer> out(new MetricsServer());
  out->impl_ = std::make_unique<Impl>();
  out->impl_->server.Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  int bound = 0;
  if (port == 0) {
    bound = out->impl_->server.bind_to_any_port(host);
  } else if (out->impl_->server.bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat("--metrics-listen: cannot listen on ", listen));
  }
  out->port_ = bound;
  Impl* impl = out->impl_.get();
  impl->thread = std::thread([impl] {
    impl->server.listen_after_bind();
    impl->finished = true;
  });
  // stop() is a no-op until the accept loop runs, so wait for it (bounded).
  for (int i = 0; i < 5000 && !impl->server.is_running() && !impl->finished; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return out;
}

MetricsServer::~MetricsServer() {
  if (!impl_) return;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

namespace {
absl::Mutex g_server_mu(absl::kConstInit);
MetricsServer* g_server ABSL_GUARDED_BY(g_server_mu) = nullptr;
}  // namespace

absl::StatusOr<int> StartMetricsServer(const std::string& listen) {
  if (listen.empty()) return 0;
  absl::MutexLock l(&g_server_mu);
  if (g_server != nullptr) {
    return absl::FailedPreconditionError("metrics server already started");
  }
  auto s = MetricsServer::Start(listen, &MetricsRegistry::Default());
  if (!s.ok()) return s.status();
  g_server = s->release();  // lives until exit
  return g_server->port();
}

}  // namespace miroir
