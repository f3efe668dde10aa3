// slow_node_driver: the write and read path with one store node SIGSTOPped
// (issue 19; DESIGN §4 "A slow or stopped node does not stall the write path"),
// on a local fleet of real processes (redis-server nodes, coordinator, workers)
// driven by the harness TestWriter plus a Get loop:
//
//   healthy  --healthy-s seconds of writes and Gets;
//   stopped  one store node SIGSTOPped for --stop-s seconds;
//   after    SIGCONT, --after-s more seconds of writes; then the writer stops,
//            the recovery passes run (quiescence) and the promise is checked on
//            every node (every owner holds every acknowledged write).
//
// Prints a Markdown report: acknowledged writes per 1 s window, the healthy rate
// and the stopped rate from 1 s after the stop (ratio), p99 batch latency per
// phase, Get p50/p99 per phase, the workers' suspicion/straggler metrics (misses
// reported) and the check (misses repaired). docs/benchmarks/slow-node.md is a
// copy of one run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "chaos/chaos_faults.h"
#include "harness/fleet.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"

namespace {

using namespace miroir::testing;  // NOLINT: a driver

int Fail(const absl::Status& s, const char* what) {
  std::fprintf(stderr, "slow_node_driver: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

double Pct(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return static_cast<double>(v[std::min(i, v.size() - 1)]);
}

std::string Machine() {
  std::string model, line;
  int cpus = 0;
  std::ifstream in("/proc/cpuinfo");
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0 && model.empty()) model = line.substr(line.find(':') + 2);
    if (line.rfind("processor", 0) == 0) ++cpus;
  }
  std::ifstream mem("/proc/meminfo");
  std::string memline;
  std::getline(mem, memline);
  return absl::StrCat(cpus, " CPU (", model, "), ", memline);
}

struct GetSample {
  int64_t at_ms;
  int64_t latency_us;
  bool ok;
  std::string error;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"slow_node_driver: writes and Gets with one store node SIGSTOPped"};
  int healthy_s = 10, stop_s = 20, after_s = 5, streams = 4, keys = 20000, batch = 16;
  int shards = 32;
  std::string node = "r1";
  std::string write_deadline = "2s";
  app.add_option("--healthy-s", healthy_s, "seconds of healthy load before the stop");
  app.add_option("--stop-s", stop_s, "seconds the node stays SIGSTOPped");
  app.add_option("--after-s", after_s, "seconds of load after SIGCONT");
  app.add_option("--streams", streams, "client write streams");
  app.add_option("--keys", keys, "keys written");
  app.add_option("--batch", batch, "items per batch");
  app.add_option("--shards", shards, "shards of the index");
  app.add_option("--node", node, "store node to stop (r0..r3)");
  app.add_option("--write-deadline", write_deadline, "worker write_deadline");
  bool reads_only = false;
  app.add_flag("--reads-only", reads_only,
               "load every key once first, then only the Get client runs through the phases");
  CLI11_PARSE(app, argc, argv);

  TempDir tmp("slow-node-bench");
  FleetOptions fo;
  fo.group_sizes = {2, 2};
  fo.indexes = {IndexSpec{"products", static_cast<uint32_t>(shards), 2}};
  fo.workers = 2;
  for (int w = 0; w < 2; ++w) {
    fo.per_worker_config[w] = absl::StrCat("write_deadline: ", write_deadline, "\n");
    fo.per_worker_flags[w] = {"--metrics-listen", "127.0.0.1:0"};
  }
  auto fleet = Fleet::Start(tmp.path(), fo);
  if (!fleet.ok()) return Fail(fleet.status(), "fleet");
  Fleet& f = **fleet;

  WriterOptions wo = f.WriterOptionsFor("products");
  wo.streams = streams;
  wo.keys = keys;
  wo.batch_size = batch;
  wo.delete_fraction = 0.1;
  wo.max_duration = absl::Seconds(healthy_s + stop_s + after_s + 60);
  wo.batch_timeout = absl::Seconds(30);
  if (reads_only) {
    wo.load_first = true;
    wo.load_only = true;
  }
  TestWriter writer(wo);
  if (reads_only) {
    if (auto s = writer.Run(); !s.ok()) return Fail(s, "load");
  }
  const int64_t t0 = absl::ToUnixMillis(absl::Now());
  if (!reads_only) {
    if (auto s = writer.Start(); !s.ok()) return Fail(s, "writer");
  }

  // One Get client on worker 0, throughout.
  std::atomic<bool> stop_gets{false};
  std::vector<GetSample> gets;
  std::thread getter([&] {
    for (int i = 0; i < 100'000'000 && !stop_gets.load(); ++i) {
      miroir::v1::GetRequest req;
      req.set_index("products");
      req.set_pk(absl::StrCat("doc:", (i * 7919) % keys));
      miroir::v1::GetResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      const absl::Time start = absl::Now();
      grpc::Status s = f.dataplane(0).Get(&ctx, req, &resp);
      gets.push_back(GetSample{absl::ToUnixMillis(start) - t0,
                               absl::ToInt64Microseconds(absl::Now() - start), s.ok(),
                               s.ok() ? "" : s.error_message()});
    }
  });

  absl::SleepFor(absl::Seconds(healthy_s));
  const int64_t stop_ms = absl::ToUnixMillis(absl::Now()) - t0;
  if (auto s = f.redis(node).Stop(); !s.ok()) return Fail(s, "SIGSTOP");
  absl::SleepFor(absl::Seconds(stop_s));
  const int64_t cont_ms = absl::ToUnixMillis(absl::Now()) - t0;
  // Metrics while stopped (sampled every 500 ms by the workers).
  std::string stopped_metrics[2];
  for (int w = 0; w < 2; ++w) stopped_metrics[w] = ScrapeMetrics(MetricsPort(f, w));
  if (auto s = f.redis(node).Cont(); !s.ok()) return Fail(s, "SIGCONT");
  absl::SleepFor(absl::Seconds(after_s));
  const int64_t end_ms = absl::ToUnixMillis(absl::Now()) - t0;
  stop_gets = true;
  getter.join();
  writer.Stop();
  writer.Wait();
  const WriterStats st = writer.stats();

  // Acknowledged writes per 1 s window (by ack time), batch latencies per phase.
  std::map<int64_t, int64_t> per_window;
  std::vector<int64_t> lat_healthy, lat_stopped, lat_after;
  for (size_t i = 0; i < st.batch_sent_ms.size(); ++i) {
    const int64_t sent = st.batch_sent_ms[i] - t0;
    if (sent < 0) continue;  // the --reads-only load
    const int64_t acked = sent + st.batch_latencies_us[i] / 1000;
    per_window[acked / 1000] += st.batch_acked_items[i];
    if (sent >= 1000 && acked < stop_ms) lat_healthy.push_back(st.batch_latencies_us[i]);
    if (sent >= stop_ms + 1000 && acked < cont_ms) lat_stopped.push_back(st.batch_latencies_us[i]);
    if (sent >= cont_ms && acked < end_ms) lat_after.push_back(st.batch_latencies_us[i]);
  }
  double healthy_sum = 0;
  int healthy_n = 0;
  for (int64_t w = 1; (w + 1) * 1000 <= stop_ms; ++w, ++healthy_n) healthy_sum += per_window[w];
  const double healthy_rate = healthy_n > 0 ? healthy_sum / healthy_n : 0;
  double stopped_sum = 0, stopped_min = 1e18;
  int stopped_n = 0;
  const int64_t first_stopped = (stop_ms + 1000 + 999) / 1000;  // first whole window 1 s after
  for (int64_t w = first_stopped; (w + 1) * 1000 <= cont_ms; ++w, ++stopped_n) {
    stopped_sum += per_window[w];
    stopped_min = std::min<double>(stopped_min, per_window[w]);
  }
  const double stopped_rate = stopped_n > 0 ? stopped_sum / stopped_n : 0;
  std::vector<int64_t> get_healthy, get_stopped;
  int get_errors_stopped = 0;
  std::map<std::string, int> get_errors;
  for (const GetSample& g : gets) {
    if (g.at_ms >= 1000 && g.at_ms < stop_ms) get_healthy.push_back(g.latency_us);
    if (g.at_ms >= stop_ms + 1000 && g.at_ms < cont_ms) {
      get_stopped.push_back(g.latency_us);
      if (!g.ok) ++get_errors_stopped;
      if (!g.ok) get_errors[g.error.substr(0, 80)] += 1;
    }
  }

  // Repair: recovery passes run, then every owner must hold every ack.
  const absl::Time check_start = absl::Now();
  auto report = CheckPromise(writer.records(), f.CheckOptionsFor("products"));
  if (!report.ok()) return Fail(report.status(), "check");
  const double check_s = absl::ToDoubleSeconds(absl::Now() - check_start);

  std::printf("## Run\n\n");
  std::printf("- machine: %s\n", Machine().c_str());
  std::printf(
      "- fleet: 4 redis-server nodes, groups g0={r0,r1} g1={r2,r3}, RF 2, S %d, 2 workers"
      " (write_deadline %s, slow-node keys at their defaults), %d client streams of %d-item"
      " batches (TestWriter)%s, 1 Get client on worker 0\n",
      shards, write_deadline.c_str(), streams, batch,
      reads_only ? " loading every key once before the phases (--reads-only: no writes"
                   " during them)"
                 : "");
  std::printf(
      "- phases: healthy 0..%.1f s, %s SIGSTOPped %.1f..%.1f s, SIGCONT, load until %.1f s\n\n",
      stop_ms / 1e3, node.c_str(), stop_ms / 1e3, cont_ms / 1e3, end_ms / 1e3);
  std::printf(
      "## Acknowledged writes per 1 s window\n\n| window (s) | phase | acked writes "
      "|\n|---|---|---|\n");
  for (int64_t w = 0; (w + 1) * 1000 <= end_ms; ++w) {
    const char* phase = (w + 1) * 1000 <= stop_ms ? "healthy"
                        : w * 1000 >= cont_ms     ? "after SIGCONT"
                        : w * 1000 < stop_ms      ? "stop"
                                                  : "stopped";
    std::printf("| %lld | %s | %lld |\n", static_cast<long long>(w), phase,
                static_cast<long long>(per_window[w]));
  }
  std::printf(
      "\n## Summary\n\n| measure | healthy | %s stopped (from 1 s after) | ratio | target "
      "|\n|---|---|---|---|---|\n",
      node.c_str());
  std::printf("| acked writes/s (mean of windows) | %.0f | %.0f | %.2f | ≥ 0.80 |\n", healthy_rate,
              stopped_rate, healthy_rate > 0 ? stopped_rate / healthy_rate : 0);
  std::printf("| acked writes/s (worst window) | | %.0f | %.2f | |\n", stopped_min,
              healthy_rate > 0 ? stopped_min / healthy_rate : 0);
  const double p99h = Pct(lat_healthy, 0.99) / 1e3, p99s = Pct(lat_stopped, 0.99) / 1e3;
  std::printf("| batch latency p50 (ms) | %.2f | %.2f | %.2f | |\n", Pct(lat_healthy, 0.5) / 1e3,
              Pct(lat_stopped, 0.5) / 1e3,
              Pct(lat_healthy, 0.5) > 0 ? Pct(lat_stopped, 0.5) / Pct(lat_healthy, 0.5) : 0);
  std::printf("| batch latency p99 (ms) | %.2f | %.2f | %.2f | ≤ 3 |\n", p99h, p99s,
              p99h > 0 ? p99s / p99h : 0);
  const double g99h = Pct(get_healthy, 0.99) / 1e3, g99s = Pct(get_stopped, 0.99) / 1e3;
  std::printf("| Get p50 (ms) | %.3f | %.3f | %.2f | |\n", Pct(get_healthy, 0.5) / 1e3,
              Pct(get_stopped, 0.5) / 1e3,
              Pct(get_healthy, 0.5) > 0 ? Pct(get_stopped, 0.5) / Pct(get_healthy, 0.5) : 0);
  std::printf("| Get p99 (ms) | %.3f | %.3f | %.2f | ≤ 3 |\n", g99h, g99s,
              g99h > 0 ? g99s / g99h : 0);
  std::printf("| Gets (count; errors while stopped) | %zu | %zu; %d | | |\n", get_healthy.size(),
              get_stopped.size(), get_errors_stopped);
  std::printf("| batch latency p99 after SIGCONT (ms) | | %.2f | | |\n\n",
              Pct(lat_after, 0.99) / 1e3);

  std::printf(
      "## Misses reported (worker metrics at the end of the stop)\n\n| metric | worker 0 | worker "
      "1 |\n|---|---|---|\n");
  for (const char* m :
       {"miroir_worker_suspected_nodes", "miroir_worker_node_suspicions_total",
        "miroir_worker_straggler_sends_total", "miroir_worker_straggler_skipped_total",
        "miroir_worker_straggler_late_newer_total", "miroir_worker_read_node_timeouts_total",
        "miroir_worker_degraded_total"}) {
    std::printf("| `%s` | %.0f | %.0f |\n", m, MetricValue(stopped_metrics[0], m),
                MetricValue(stopped_metrics[1], m));
  }
  std::printf(
      "\n## Repaired\n\nwriter: %llu acknowledged (%llu degraded), %llu unknown outcome;"
      " check after SIGCONT (recovery passes to quiescence, then every node read) took"
      " %.1f s: %s\n",
      static_cast<unsigned long long>(st.acked()), static_cast<unsigned long long>(st.degraded),
      static_cast<unsigned long long>(st.unknown), check_s, report->Summary().c_str());
  for (const auto& [e, c] : get_errors)
    std::printf("\nGet error while stopped (%d): %s\n", c, e.c_str());
  for (const auto& [code, c] : st.error_codes) {
    std::printf("\nwrite item errors: code %d x %llu\n", code, static_cast<unsigned long long>(c));
  }
  return report->ok() ? 0 : 3;
}
