// swap_stall_driver: the reshard swap's write stall as S grows (issue 19 item 3),
// measured on a local fleet started by the test harness (real redis-server nodes,
// miroir-coordinator, 2 miroir-workers).
//
// For each S in --sizes, --sets times, on a fresh fleet (RG 2 × 2 nodes, RF 1):
// loads S × --docs-per-shard documents through the public write path (the one
// TestWriter), runs a second TestWriter at --rate writes/s throughout, starts
// `Reshard.Start` S → 2S (verify_before_swap off: the swap is what is measured),
// waits for retention and reads the reshard's record and events:
//   - stall: ReshardRecord.stall_ms (writes paused → the flip published);
//   - the swap's phases from the state entries: swap_paused → swap_fenced (the
//     pause acknowledged, every live shard fenced, every new shard's position
//     read), swap_fenced → retention (the final delta and the flip);
//   - the live writer's longest batch sent within ±1 s of the swap;
// then checks the promise (CheckPromise) over every acknowledged write.
//
// Prints one Markdown table row per run on stdout (docs/benchmarks/swap-stall.md);
// progress on stderr. Timings belong here, never in tests.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/reshard_names.h"
#include "harness/fleet.h"
#include "harness/reshard_ops.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"
#include "miroir/v1/reshard.grpc.pb.h"

namespace {

namespace pb = ::miroir::v1;
using miroir::testing::Fleet;
using miroir::testing::FleetOptions;

void Log(const std::string& s) {
  std::fprintf(stderr, "[swap_stall_driver] %s\n", s.c_str());
  std::fflush(stderr);
}

struct Options {
  std::vector<uint32_t> sizes = {8, 64, 256, 512};
  int docs_per_shard = 20;
  double rate = 200;
  int sets = 1;
  // Reshard under sustained writes (--load-fractions): S, hot keys, seconds.
  std::vector<double> load_fractions;
  uint32_t load_shards = 32;
  int load_keys = 20000;
  int idle_seconds = 10;
  int load_timeout_s = 300;
};

// The §4 check over every acknowledged write of the writers, read on the nodes.
struct Promise {
  uint64_t acked = 0, lost = 0, resurrected = 0, other = 0;
  bool ok() const { return lost == 0 && resurrected == 0 && other == 0; }
};

absl::StatusOr<Promise> CheckAll(Fleet& f,
                                 const std::vector<const miroir::testing::TestWriter*>& writers) {
  std::map<std::string, miroir::testing::KeyRecord> records;
  for (const auto* w : writers) {
    for (auto& [k, v] : w->records()) records[k] = v;
  }
  auto report = miroir::testing::CheckPromise(records, f.CheckOptionsFor("products"));
  if (!report.ok()) return report.status();
  Log(report->Summary());
  return Promise{report->acknowledged_writes, report->lost, report->resurrected,
                 report->mismatched + report->wrong_owner + report->unreachable};
}

struct Row {
  uint32_t from = 0, to = 0;
  int set = 0;
  int docs = 0;
  uint64_t stall_ms = 0;
  int64_t fence_ms = -1, delta_ms = -1;  // swap_paused → swap_fenced, swap_fenced → retention
  double writer_max_ms = 0;              // longest batch sent within ±1 s of the swap
  uint64_t retries = 0;
  Promise promise;
};

absl::StatusOr<Row> RunOne(uint32_t s_old, int set, const Options& o) {
  Row row;
  row.from = s_old;
  row.to = 2 * s_old;
  row.set = set;
  row.docs = static_cast<int>(s_old) * o.docs_per_shard;
  miroir::testing::TempDir tmp("bench-swap");
  FleetOptions fo;
  fo.group_sizes = {2, 2};
  fo.workers = 2;
  fo.indexes = {{"products", s_old, 1}};
  fo.coordinator_config["resharding"]["retain_old_index_hours"] = 48;  // hold retention
  fo.coordinator_config["resharding"]["verify_before_swap"] = false;
  fo.coordinator_config["anti_entropy"]["enabled"] = false;
  auto fleet = Fleet::Start(tmp.path(), fo);
  if (!fleet.ok()) return fleet.status();
  Fleet& f = **fleet;

  miroir::testing::WriterOptions lo = f.WriterOptionsFor("products");
  lo.key_prefix = "doc:";
  lo.keys = row.docs;
  lo.load_first = true;
  lo.load_only = true;
  lo.delete_fraction = 0;
  lo.streams = 4;
  lo.batch_size = 100;
  lo.max_duration = absl::Minutes(5);
  lo.batch_timeout = absl::Seconds(30);
  lo.seed = 1;
  miroir::testing::TestWriter load(lo);
  if (absl::Status s = load.Run(); !s.ok()) return s;

  miroir::testing::WriterOptions wo = f.WriterOptionsFor("products");
  wo.key_prefix = "w:";
  wo.keys = 2000;
  wo.delete_fraction = 0.2;
  wo.streams = 2;
  wo.batch_size = 2;
  wo.ops_per_second = o.rate;
  wo.max_duration = absl::Minutes(15);
  wo.seed = 2;
  miroir::testing::TestWriter writer(wo);
  if (absl::Status s = writer.Start(); !s.ok()) return s;
  absl::SleepFor(absl::Seconds(1));

  auto started = miroir::testing::StartReshard(f, miroir::testing::ReshardTo(row.to));
  if (!started.ok()) return started.status();
  auto reached = miroir::testing::WaitForReshardState(f, {"retention"}, absl::Minutes(10));
  if (!reached.ok()) return reached.status();
  auto at_retention = miroir::testing::ReshardCall(f, "status");
  if (!at_retention.ok()) return at_retention.status();
  absl::SleepFor(absl::Seconds(1));
  writer.Stop();
  writer.Wait();

  const pb::ReshardRecord& rec = at_retention->reshard();
  row.stall_ms = rec.stall_ms();
  row.retries = rec.stall_retries();
  std::map<std::string, int64_t> entered;  // last entry into each state
  for (const auto& e : at_retention->events()) {
    if (e.plan_id() == rec.id()) entered[e.to()] = e.time_ms();
  }
  if (entered.count("swap_paused") && entered.count("swap_fenced")) {
    row.fence_ms = entered["swap_fenced"] - entered["swap_paused"];
  }
  if (entered.count("swap_fenced") && entered.count("retention")) {
    row.delta_ms = entered["retention"] - entered["swap_fenced"];
  }
  const int64_t swap_ms = entered.count("swap_paused") ? entered["swap_paused"] : 0;
  const auto ws = writer.stats();
  for (size_t i = 0; i < ws.batch_latencies_us.size(); ++i) {
    if (std::llabs(ws.batch_sent_ms[i] - swap_ms) <= 1000) {
      row.writer_max_ms =
          std::max(row.writer_max_ms, static_cast<double>(ws.batch_latencies_us[i]) / 1000.0);
    }
  }
  auto promise = CheckAll(f, {&load, &writer});
  if (!promise.ok()) return promise.status();
  row.promise = *promise;
  return row;
}

// ---- reshard under sustained writes (issue 19 item 5) ----

struct LoadRow {
  double fraction = 0;
  double idle_capacity = 0;  // acked writes/s, writer unthrottled, no reshard
  double target_rate = 0, achieved_rate = 0;
  double dual_capacity = 0;  // acked writes/s unthrottled in retention (writes go to both)
  std::string outcome;       // "retention" or why not
  int64_t catching_up_ms = -1;
  uint64_t rounds = 0, stall_ms = 0, retries = 0, estimate_ms = 0, copy_rate = 0;
  Promise promise;
};

absl::StatusOr<LoadRow> RunLoad(double fraction, const Options& o) {
  LoadRow row;
  row.fraction = fraction;
  miroir::testing::TempDir tmp("bench-reshard-load");
  FleetOptions fo;
  fo.group_sizes = {2, 2};
  fo.workers = 2;
  fo.indexes = {{"products", o.load_shards, 1}};
  fo.coordinator_config["resharding"]["retain_old_index_hours"] = 48;
  fo.coordinator_config["resharding"]["verify_before_swap"] = false;
  fo.coordinator_config["anti_entropy"]["enabled"] = false;
  fo.coordinator_config["migration"]["catch_up_max"] = "10m";
  auto fleet = Fleet::Start(tmp.path(), fo);
  if (!fleet.ok()) return fleet.status();
  Fleet& f = **fleet;
  auto hot = [&](double rate, absl::Duration d, uint64_t seed) {
    miroir::testing::WriterOptions wo = f.WriterOptionsFor("products");
    wo.key_prefix = "doc:";
    wo.keys = o.load_keys;
    wo.delete_fraction = 0.1;
    wo.streams = 4;
    wo.batch_size = 16;
    wo.ops_per_second = rate;
    wo.max_duration = d;
    wo.batch_timeout = absl::Seconds(30);
    wo.seed = seed;
    return wo;
  };
  // Load every key once, then measure the idle capacity on the same keys.
  miroir::testing::WriterOptions lo = hot(0, absl::Minutes(5), 1);
  lo.load_first = true;
  lo.load_only = true;
  lo.delete_fraction = 0;
  miroir::testing::TestWriter load(lo);
  if (absl::Status s = load.Run(); !s.ok()) return s;
  miroir::testing::TestWriter idle(hot(0, absl::Seconds(o.idle_seconds), 2));
  const absl::Time i0 = absl::Now();
  if (absl::Status s = idle.Run(); !s.ok()) return s;
  row.idle_capacity =
      static_cast<double>(idle.stats().acked()) / absl::ToDoubleSeconds(absl::Now() - i0);
  row.target_rate = fraction * row.idle_capacity;
  Log(absl::StrFormat("idle capacity %.0f writes/s; reshard %u->%u at %.0f writes/s (%.2f)",
                      row.idle_capacity, o.load_shards, 2 * o.load_shards, row.target_rate,
                      fraction));

  miroir::testing::TestWriter writer(hot(row.target_rate, absl::Minutes(12), 3));
  if (absl::Status s = writer.Start(); !s.ok()) return s;
  absl::SleepFor(absl::Seconds(2));
  const uint64_t acked0 = writer.stats().acked();
  const absl::Time w0 = absl::Now();
  auto started = miroir::testing::StartReshard(f, miroir::testing::ReshardTo(2 * o.load_shards));
  if (!started.ok()) return started.status();
  auto reached =
      miroir::testing::WaitForReshardState(f, {"retention"}, absl::Seconds(o.load_timeout_s));
  auto last = miroir::testing::ReshardCall(f, "status");
  if (!last.ok()) return last.status();
  row.achieved_rate = static_cast<double>(writer.stats().acked() - acked0) /
                      absl::ToDoubleSeconds(absl::Now() - w0);
  writer.Stop();
  writer.Wait();
  // In retention both generations still take every write (reverse dual-write)
  // and nothing copies: the fleet's capacity while writing everything twice.
  miroir::testing::TestWriter dual(hot(0, absl::Seconds(o.idle_seconds), 4));
  if (reached.ok()) {
    const absl::Time d0 = absl::Now();
    if (absl::Status s = dual.Run(); !s.ok()) return s;
    row.dual_capacity =
        static_cast<double>(dual.stats().acked()) / absl::ToDoubleSeconds(absl::Now() - d0);
  }
  const pb::ReshardRecord& rec = last->reshard();
  row.outcome = reached.ok() ? "completed" : std::string(reached.status().message());
  row.rounds = rec.catch_up_passes();
  row.stall_ms = rec.stall_ms();
  row.retries = rec.stall_retries();
  row.estimate_ms = rec.estimated_final_delta_ms();
  row.copy_rate = rec.copy_rate_docs_per_s();
  int64_t cu_first = 0, cu_end = 0;
  for (const auto& e : last->events()) {
    if (e.plan_id() != rec.id()) continue;
    if (e.to() == "catching_up" && cu_first == 0) cu_first = e.time_ms();
    if (e.from() == "catching_up") cu_end = e.time_ms();
  }
  if (cu_first > 0 && cu_end >= cu_first) row.catching_up_ms = cu_end - cu_first;
  auto promise = CheckAll(f, {&load, &idle, &writer, &dual});
  if (!promise.ok()) return promise.status();
  row.promise = *promise;
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"reshard swap stall as S grows (issue 19 item 3)"};
  app.add_option("--sizes", o.sizes, "S before each reshard (to 2S)")->delimiter(',');
  app.add_option("--docs-per-shard", o.docs_per_shard, "documents loaded per live shard");
  app.add_option("--rate", o.rate, "live writer's writes/s during the reshard");
  app.add_option("--sets", o.sets, "runs per size, each on a fresh fleet");
  app.add_option("--load-fractions", o.load_fractions,
                 "reshard under sustained writes at these fractions of the idle capacity "
                 "(instead of the swap sizes)")
      ->delimiter(',');
  app.add_option("--load-shards", o.load_shards, "S before the reshard under load (to 2S)");
  app.add_option("--load-keys", o.load_keys, "hot keys written during the reshard under load");
  app.add_option("--load-timeout", o.load_timeout_s, "seconds a reshard under load may take");
  CLI11_PARSE(app, argc, argv);
  if (!o.load_fractions.empty()) {
    std::printf(
        "| offered (× idle) | idle capacity w/s | offered w/s | achieved w/s | achieved / idle | "
        "dual-write capacity / idle | outcome | "
        "catching_up ms | rounds | copy rate docs/s | est. final delta ms | stall ms | "
        "stall retries | acked | lost | resurrected | other |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    std::fflush(stdout);
    int rc = 0;
    for (double fr : o.load_fractions) {
      auto row = RunLoad(fr, o);
      if (!row.ok()) {
        Log(absl::StrCat("fraction ", fr, ": ", row.status().ToString()));
        std::printf("| %.2f | failed: %s |\n", fr, std::string(row.status().message()).c_str());
        rc = 1;
        continue;
      }
      std::printf(
          "| %.2f | %.0f | %.0f | %.0f | %.2f | %.2f | %s | %lld | %llu | %llu | %llu | %llu | "
          "%llu | %llu | %llu | %llu | %llu |\n",
          row->fraction, row->idle_capacity, row->target_rate, row->achieved_rate,
          row->achieved_rate / std::max(1.0, row->idle_capacity),
          row->dual_capacity / std::max(1.0, row->idle_capacity), row->outcome.c_str(),
          static_cast<long long>(row->catching_up_ms), static_cast<unsigned long long>(row->rounds),
          static_cast<unsigned long long>(row->copy_rate),
          static_cast<unsigned long long>(row->estimate_ms),
          static_cast<unsigned long long>(row->stall_ms),
          static_cast<unsigned long long>(row->retries),
          static_cast<unsigned long long>(row->promise.acked),
          static_cast<unsigned long long>(row->promise.lost),
          static_cast<unsigned long long>(row->promise.resurrected),
          static_cast<unsigned long long>(row->promise.other));
      std::fflush(stdout);
      if (!row->promise.ok()) rc = 1;
    }
    return rc;
  }
  std::printf(
      "| S | set | docs | stall ms | pause → fenced ms | fenced → flip ms | writer max batch ms "
      "(±1 s of the swap) | stall retries | acked | lost | resurrected | other |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  int rc = 0;
  for (uint32_t s : o.sizes) {
    for (int set = 1; set <= o.sets; ++set) {
      auto row = RunOne(s, set, o);
      if (!row.ok()) {
        Log(absl::StrCat(s, "->", 2 * s, " set ", set, ": ", row.status().ToString()));
        std::printf("| %u→%u | %d | — | failed: %s |\n", s, 2 * s, set,
                    std::string(row.status().message()).c_str());
        rc = 1;
        continue;
      }
      std::printf(
          "| %u→%u | %d | %d | %llu | %lld | %lld | %.1f | %llu | %llu | %llu | %llu | %llu |\n",
          row->from, row->to, row->set, row->docs, static_cast<unsigned long long>(row->stall_ms),
          static_cast<long long>(row->fence_ms), static_cast<long long>(row->delta_ms),
          row->writer_max_ms, static_cast<unsigned long long>(row->retries),
          static_cast<unsigned long long>(row->promise.acked),
          static_cast<unsigned long long>(row->promise.lost),
          static_cast<unsigned long long>(row->promise.resurrected),
          static_cast<unsigned long long>(row->promise.other));
      std::fflush(stdout);
      if (!row->promise.ok()) rc = 1;
    }
  }
  return rc;
}
