// move_driver: end-to-end move benchmark on a local fleet (real redis-server
// nodes, coordinator and workers, started by the test harness). Measures, in one
// run, on this machine:
//
//  1. Write stall at cutover under a steady write load (default 2,000 writes/s):
//     the coordinator's per-move E2->E3 stall (p50/p99/max over every move of an
//     add-node plan and the remove-node plan that undoes it) and the client-side
//     batch latency seen by the writer while the plans ran.
//  2. Backfill documents/s of a move (no concurrent writes) vs. a raw pipelined
//     copy of the same shard from node A to node B through the same conditional
//     write script (store adapter Scan + Apply), and vs. a plain pipelined SET.
//
// Prints a Markdown report (docs/benchmarks/moves.md is a copy of one run).
// Timings belong here, never in tests.
#include <hiredis/hiredis.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"
#include "worker/stores/store_adapter.h"

namespace {

namespace pb = ::miroir::v1;
using miroir::testing::Fleet;
using miroir::testing::FleetOptions;

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1) + 0.5)];
}

std::string Row3(const std::vector<double>& v) {
  return absl::StrFormat("%.1f | %.1f | %.1f", Pct(v, 0.5), Pct(v, 0.99),
                         v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
}

int Fail(const absl::Status& s, const char* what) {
  std::fprintf(stderr, "move_driver: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

struct StallResult {
  std::vector<double> move_stalls_ms;
  std::vector<double> client_batch_ms;
  std::vector<double> paused_ms;       // time in `paused` (drain + fence) per move
  std::vector<double> final_delta_ms;  // time in `final_delta` (copy + publish E3) per move
  std::vector<std::string> trace;      // every move event (MOVE_DRIVER_TRACE)
  uint64_t acked = 0, moves = 0;
  double achieved_rate = 0;
  uint64_t lost = 0, resurrected = 0;
};

absl::StatusOr<StallResult> MeasureStall(double rate, int keys, uint32_t shards,
                                         uint64_t backfill_batch, int rounds) {
  miroir::testing::TempDir tmp("bench-stall");
  FleetOptions fo;
  if (backfill_batch > 0)
    fo.coordinator_config["migration"]["backfill_batch_size"] = backfill_batch;
  // The stall is measured with the product's drain_timeout, not the harness's
  // 500 ms (which keeps slow test machines from fencing writes still in flight).
  fo.coordinator_config["migration"].remove("drain_timeout");
  fo.group_sizes = {2, 2};
  fo.indexes = {{"products", shards, 1}};
  auto fleet = Fleet::Start(tmp.path(), fo);
  if (!fleet.ok()) return fleet.status();
  Fleet& f = **fleet;
  miroir::testing::WriterOptions wo = f.WriterOptionsFor("products");
  wo.keys = keys;
  wo.load_first = true;
  wo.delete_fraction = 0.1;
  wo.streams = 16;
  wo.batch_size = 8;
  wo.max_duration = absl::Minutes(10);
  wo.ops_per_second = rate;
  wo.load_first = false;
  wo.key_prefix = "w:";
  miroir::testing::TestWriter writer(wo);
  {
    miroir::testing::WriterOptions lo = wo;
    lo.max_ops = keys;
    lo.key_prefix = "doc:";
    lo.load_first = true;
    lo.ops_per_second = 0;
    lo.delete_fraction = 0;
    miroir::testing::TestWriter load(lo);
    if (absl::Status s = load.Run(); !s.ok()) return s;
  }
  if (absl::Status s = writer.Start(); !s.ok()) return s;
  absl::SleepFor(absl::Seconds(3));  // steady state
  size_t before = writer.stats().batch_latencies_us.size();
  absl::Time t0 = absl::Now();
  StallResult out;
  for (int round = 0; round < rounds; ++round) {
    // Each round adds a new node to g0, then removes it again.
    const std::string node = absl::StrCat("r", 9 + round);
    auto addr = f.AddNodeProcess(node, "g0");
    if (!addr.ok()) return addr.status();
    for (const auto& req : {miroir::testing::AddNodeRequest(node, "g0", *addr),
                            miroir::testing::RemoveNodeRequest(node)}) {
      auto plan = f.CreatePlan(req);
      if (!plan.ok()) return plan.status();
      auto end = f.WaitForPlanEnd(plan->id(), absl::Minutes(5));
      if (!end.ok()) return end.status();
      if (end->state() != pb::PLAN_DONE) {
        return absl::InternalError(miroir::testing::DescribePlan(*end));
      }
      for (const auto& m : end->moves()) out.move_stalls_ms.push_back(m.stall_ms());
      // Where the stall goes: the time each move spent in each cutover state.
      auto history = f.GetPlan(plan->id());
      if (!history.ok()) return history.status();
      std::map<uint64_t, std::map<std::string, int64_t>> entered;
      for (const auto& e : history->history()) {
        out.trace.push_back(absl::StrCat("event ", e.time_ms(), " move ", e.move_id(), " ",
                                         e.from(), " -> ", e.to(), " (", e.reason(), ")"));
        if (e.move_id() == 0) continue;
        entered[e.move_id()][e.to()] = e.time_ms();
      }
      for (auto& [id, at] : entered) {
        if (at.count("paused") && at.count("final_delta")) {
          out.paused_ms.push_back(static_cast<double>(at["final_delta"] - at["paused"]));
        }
        if (at.count("final_delta") && at.count("active")) {
          out.final_delta_ms.push_back(static_cast<double>(at["active"] - at["final_delta"]));
        }
      }
      out.moves += end->moves_size();
    }
  }
  absl::Duration span = absl::Now() - t0;
  writer.Stop();
  writer.Wait();
  auto st = writer.stats();
  for (size_t i = before; i < st.batch_latencies_us.size(); ++i) {
    out.client_batch_ms.push_back(st.batch_latencies_us[i] / 1000.0);
  }
  out.acked = st.acked();
  out.achieved_rate =
      (st.batch_latencies_us.size() - before) * wo.batch_size / absl::ToDoubleSeconds(span);
  if (std::getenv("MOVE_DRIVER_TRACE") != nullptr) {
    // The slowest client batches, with when they were sent, next to the plans' events.
    std::vector<size_t> idx;
    for (size_t i = before; i < st.batch_latencies_us.size(); ++i) idx.push_back(i);
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      return st.batch_latencies_us[a] > st.batch_latencies_us[b];
    });
    for (size_t i = 0; i < std::min<size_t>(idx.size(), 20); ++i) {
      std::fprintf(stderr, "slow batch: sent %lld latency %lld ms\n",
                   static_cast<long long>(st.batch_sent_ms[idx[i]]),
                   static_cast<long long>(st.batch_latencies_us[idx[i]] / 1000));
    }
    for (const std::string& line : out.trace) std::fprintf(stderr, "%s\n", line.c_str());
  }
  auto report = miroir::testing::CheckPromise(writer.records(), f.CheckOptionsFor("products"));
  if (!report.ok()) return report.status();
  out.lost = report->lost;
  out.resurrected = report->resurrected;
  return out;
}

struct CopyResult {
  double backfill_dps = 0;
  uint64_t backfill_docs = 0;
  double raw_script_dps = 0;
  double raw_set_dps = 0;
  double raw_getset_dps = 0;
  uint64_t raw_docs = 0;
};

// Plain pipelined SET of every body into `address`; returns seconds.
double PipelinedSet(const std::string& address, const std::vector<miroir::StoredDoc>& docs) {
  int port = std::stoi(address.substr(address.find(':') + 1));
  redisContext* c = redisConnect("127.0.0.1", port);
  absl::Time t0 = absl::Now();
  size_t pending = 0;
  for (const auto& d : docs) {
    redisAppendCommand(c, "SET plain:%b %b", d.pk.data(), d.pk.size(), d.body.data(),
                       d.body.size());
    if (++pending == 500) {
      for (; pending > 0; --pending) {
        void* r = nullptr;
        redisGetReply(c, &r);
        freeReplyObject(r);
      }
    }
  }
  for (; pending > 0; --pending) {
    void* r = nullptr;
    redisGetReply(c, &r);
    freeReplyObject(r);
  }
  double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  redisFree(c);
  return secs;
}

// Plain copy of the `plain:` keys PipelinedSet wrote on `from` into `to`:
// pipelined GETs from `from` (pages of 500), each page SET into `to`, pipelined.
// No versions, fences or change sequences: what a copy costs without them.
double PipelinedGetSet(const std::string& from, const std::string& to,
                       const std::vector<miroir::StoredDoc>& docs) {
  auto connect = [](const std::string& address) {
    return redisConnect("127.0.0.1", std::stoi(address.substr(address.find(':') + 1)));
  };
  redisContext* src = connect(from);
  redisContext* dst = connect(to);
  absl::Time t0 = absl::Now();
  for (size_t at = 0; at < docs.size(); at += 500) {
    const size_t end = std::min(docs.size(), at + 500);
    for (size_t i = at; i < end; ++i) {
      redisAppendCommand(src, "GET plain:%b", docs[i].pk.data(), docs[i].pk.size());
    }
    for (size_t i = at; i < end; ++i) {
      void* r = nullptr;
      redisGetReply(src, &r);
      auto* reply = static_cast<redisReply*>(r);
      if (reply != nullptr && reply->type == REDIS_REPLY_STRING) {
        redisAppendCommand(dst, "SET plain:%b %b", docs[i].pk.data(), docs[i].pk.size(), reply->str,
                           reply->len);
      } else {
        redisAppendCommand(dst, "PING");
      }
      freeReplyObject(r);
    }
    for (size_t i = at; i < end; ++i) {
      void* r = nullptr;
      redisGetReply(dst, &r);
      freeReplyObject(r);
    }
  }
  double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  redisFree(src);
  redisFree(dst);
  return secs;
}

absl::StatusOr<CopyResult> MeasureCopy(int keys, uint64_t backfill_batch) {
  miroir::testing::TempDir tmp("bench-copy");
  FleetOptions fo;
  if (backfill_batch > 0)
    fo.coordinator_config["migration"]["backfill_batch_size"] = backfill_batch;
  fo.group_sizes = {1};
  fo.workers = 1;
  fo.indexes = {{"products", 4, 1}};
  auto fleet = Fleet::Start(tmp.path(), fo);
  if (!fleet.ok()) return fleet.status();
  Fleet& f = **fleet;
  miroir::testing::WriterOptions wo = f.WriterOptionsFor("products");
  wo.keys = keys;
  wo.load_first = true;
  wo.delete_fraction = 0;
  wo.max_ops = keys;
  wo.streams = 8;
  wo.batch_size = 64;
  wo.body_padding = 200;
  wo.max_duration = absl::Minutes(10);
  miroir::testing::TestWriter load(wo);
  if (absl::Status s = load.Run(); !s.ok()) return s;

  CopyResult out;
  // Backfill: add a node; time each move's copying phase from the plan history.
  auto addr = f.AddNodeProcess("r9", "g0");
  if (!addr.ok()) return addr.status();
  auto plan = f.CreatePlan(miroir::testing::AddNodeRequest("r9", "g0", *addr));
  if (!plan.ok()) return plan.status();
  auto end = f.WaitForPlanEnd(plan->id(), absl::Minutes(5));
  if (!end.ok()) return end.status();
  auto full = f.GetPlan(plan->id());
  if (!full.ok()) return full.status();
  int64_t first = 0, last = 0;
  for (const auto& e : full->history()) {
    if (e.to() == "copying" && (first == 0 || e.time_ms() < first)) first = e.time_ms();
    if (e.from() == "copying") last = std::max(last, e.time_ms());
  }
  for (const auto& m : end->moves()) out.backfill_docs += m.documents_copied();
  if (last > first) out.backfill_dps = out.backfill_docs * 1000.0 / (last - first);

  // Raw copy of the same shards from r0 into a fresh node, same script.
  auto fresh = f.AddNodeProcess("raw", "g0");
  if (!fresh.ok()) return fresh.status();
  miroir::StoreOptions so;
  auto dst = miroir::MakeStoreAdapter("redis", f.redis("raw").address(), so);
  auto orig = miroir::MakeStoreAdapter("redis", f.redis("r9").address(), so);
  if (!dst.ok() || !orig.ok()) return absl::InternalError("store adapters");
  std::vector<miroir::StoredDoc> all;
  double script_secs = 0;
  for (const auto& m : end->moves()) {
    miroir::ShardKey key{m.index(), m.generation(), m.shard()};
    // The moved shard now lives on r9 (r0 was cleaned up): copy r9 -> raw.
    std::string after;
    absl::Time t0 = absl::Now();
    while (true) {
      auto page = (*orig)->Scan(key, miroir::kAnyEpoch, after, 500);
      if (!page.ok()) return page.status();
      if (page->empty()) break;
      std::vector<miroir::Mutation> muts;
      for (const auto& d : *page) {
        muts.push_back({d.pk, d.version, d.tombstone, d.body, d.expires_at_ms});
        all.push_back(d);
      }
      auto applied = (*dst)->Apply(key, 1, muts);
      if (!applied.ok()) return applied.status();
      after = page->back().pk;
      if (page->size() < 500) break;
    }
    script_secs += absl::ToDoubleSeconds(absl::Now() - t0);
  }
  out.raw_docs = all.size();
  if (script_secs > 0) out.raw_script_dps = all.size() / script_secs;
  double set_secs = PipelinedSet(f.redis("raw").address(), all);
  if (set_secs > 0) out.raw_set_dps = all.size() / set_secs;
  // The plain GET/SET copy: from the `plain:` keys just written on raw into r0.
  double getset_secs = PipelinedGetSet(f.redis("raw").address(), f.redis("r0").address(), all);
  if (getset_secs > 0) out.raw_getset_dps = all.size() / getset_secs;
  return out;
}

void PrintStall(const StallResult& stall, double rate, uint32_t shards) {
  std::printf("## Write stall at cutover (%.0f writes/s target, %.0f achieved)\n\n", rate,
              stall.achieved_rate);
  std::printf(
      "%llu moves (add-node then remove-node, S=%u, RG=2, RF=1, 2 workers, product defaults "
      "for drain_timeout and pool_size), %llu acknowledged writes, lost %llu, resurrected "
      "%llu.\n\n",
      static_cast<unsigned long long>(stall.moves), shards,
      static_cast<unsigned long long>(stall.acked), static_cast<unsigned long long>(stall.lost),
      static_cast<unsigned long long>(stall.resurrected));
  std::printf("| measure (ms) | p50 | p99 | max |\n|---|---|---|---|\n");
  std::printf("| cutover stall E2->E3 per move (coordinator) | %s |\n",
              Row3(stall.move_stalls_ms).c_str());
  std::printf("| of which in `paused` (drain + fence) | %s |\n", Row3(stall.paused_ms).c_str());
  std::printf("| of which in `final_delta` (copy (W, F], publish E3) | %s |\n",
              Row3(stall.final_delta_ms).c_str());
  std::printf("| client batch latency during the plans (8 writes/batch) | %s |\n\n",
              Row3(stall.client_batch_ms).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"move_driver: cutover write stall and backfill rate on a local fleet"};
  double rate = 2000;
  int keys = 20000;
  int copy_keys = 40000;
  uint32_t shards = 16;
  app.add_option("--rate", rate, "writes/s during the plans");
  app.add_option("--keys", keys, "documents loaded before the stall run");
  app.add_option("--copy-keys", copy_keys, "documents loaded before the backfill run");
  app.add_option("--shards", shards, "S of the index in the stall run");
  uint64_t backfill_batch = 0;
  int rounds = 1;
  app.add_option("--rounds", rounds,
                 "add-node + remove-node rounds in the stall run (5 moves each)")
      ->check(CLI::Range(1, 50));
  app.add_option("--backfill-batch", backfill_batch,
                 "migration.backfill_batch_size in both runs (0: the product default)");
  bool stall_only = false;
  app.add_flag("--stall-only", stall_only, "skip the backfill-rate run");
  bool copy_only = false;
  app.add_flag("--copy-only", copy_only, "skip the stall run")->excludes("--stall-only");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<StallResult> stall = StallResult{};
  if (!copy_only) stall = MeasureStall(rate, keys, shards, backfill_batch, rounds);
  if (!stall.ok()) return Fail(stall.status(), "stall run");
  absl::StatusOr<CopyResult> copy = CopyResult{};
  if (!stall_only) copy = MeasureCopy(copy_keys, backfill_batch);
  if (!copy.ok()) return Fail(copy.status(), "copy run");
  if (!copy_only) PrintStall(*stall, rate, shards);

  if (stall_only) return 0;
  std::printf("## Backfill rate vs. raw copy (%llu documents moved, ~250-byte bodies)\n\n",
              static_cast<unsigned long long>(copy->backfill_docs));
  std::printf("| copy | documents/s | ratio to raw script copy |\n|---|---|---|\n");
  std::printf("| miroir backfill (first copying -> last copy done) | %.0f | %.2f |\n",
              copy->backfill_dps,
              copy->raw_script_dps > 0 ? copy->backfill_dps / copy->raw_script_dps : 0);
  std::printf("| raw: Scan + conditional-write script, pipelined, 1 thread | %.0f | 1.00 |\n",
              copy->raw_script_dps);
  std::printf("| plain copy: pipelined GET from one node, SET into another | %.0f | %.2f |\n",
              copy->raw_getset_dps,
              copy->raw_script_dps > 0 ? copy->raw_getset_dps / copy->raw_script_dps : 0);
  std::printf("| plain pipelined SET of the same bodies (store floor) | %.0f | %.2f |\n",
              copy->raw_set_dps,
              copy->raw_script_dps > 0 ? copy->raw_set_dps / copy->raw_script_dps : 0);
  return 0;
}
