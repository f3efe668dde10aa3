// ae_driver: anti-entropy digest throughput on real redis-server replicas (issue 7).
// In one run, on this machine, for one shard of N documents on 2 replicas:
//
//  1. baseline: a plain full keyset scan of the shard on both replicas at once
//     (StoreAdapter::Scan pages, one thread per replica) — the least any pass
//     that looks at every document must read;
//  2. a healthy AE pass (RunAePass exactly as a worker runs TASK_AE_PASS: bucketed
//     digests of every replica in parallel, roots compared, nothing to repair);
//  3. the documents each replica served during each of them (redis INFO
//     keyspace_hits), to show a healthy pass reads each document once per replica.
//
// Prints a Markdown report (docs/benchmarks/anti-entropy.md is a copy of one run).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "harness/redis_node.h"
#include "harness/temp_dir.h"
#include "worker/stores/redis_store.h"
#include "worker/tasks/ae_pass.h"

namespace {

using miroir::testing::RedisNode;

uint64_t KeyspaceHits(RedisNode& n) {
  auto info = n.Command({"INFO", "stats"});
  if (!info.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(*info, absl::ByAnyChar("\r\n"))) {
    uint64_t v = 0;
    if (absl::ConsumePrefix(&line, "keyspace_hits:") && absl::SimpleAtoi(line, &v)) return v;
  }
  return 0;
}

int Fail(const absl::Status& s, const char* what) {
  std::fprintf(stderr, "ae_driver: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ae_driver: anti-entropy digest throughput vs a plain full scan"};
  int docs = 200000;
  int body = 200;
  int runs = 3;
  app.add_option("--docs", docs, "documents in the shard (on each replica)");
  app.add_option("--body-bytes", body, "body size");
  app.add_option("--runs", runs, "repetitions of each measurement (best is reported)");
  CLI11_PARSE(app, argc, argv);

  miroir::testing::TempDir tmp("ae-bench");
  const miroir::ShardKey shard{"bench", 1, 0};
  std::vector<std::unique_ptr<RedisNode>> nodes;
  std::vector<std::shared_ptr<miroir::StoreAdapter>> stores;
  for (const char* id : {"r0", "r1"}) {
    auto n = RedisNode::Start(tmp.Subdir(id));
    if (!n.ok()) return Fail(n.status(), "redis");
    miroir::StoreOptions so;
    so.op_timeout_ms = 30000;
    auto s = miroir::RedisStore::Create((*n)->address(), so);
    if (!s.ok()) return Fail(s.status(), "store");
    stores.push_back(std::shared_ptr<miroir::StoreAdapter>(std::move(*s)));
    nodes.push_back(std::move(*n));
  }
  // Load: the same documents at the same versions on both replicas.
  const std::string payload(static_cast<size_t>(body), 'x');
  for (int at = 0; at < docs; at += 1000) {
    std::vector<miroir::Mutation> batch;
    for (int i = at; i < std::min(docs, at + 1000); ++i) {
      batch.push_back(miroir::Mutation{absl::StrCat("doc:", i), miroir::Version{1000u + i, 1},
                                       false, absl::StrCat("{\"p\":\"", payload, "\"}"), 0});
    }
    for (auto& s : stores) {
      auto r = s->Apply(shard, 1, batch);
      if (!r.ok()) return Fail(r.status(), "load");
    }
  }

  // 1. Plain full scan of both replicas at once, at an epoch (what a pass carries:
  // the store checks the shard's fence) and with kAnyEpoch (reads that skip it).
  auto plain_scan = [&](uint64_t epoch, double* best, uint64_t* hits) -> bool {
    *best = 1e18;
    for (int run = 0; run < runs; ++run) {
      const uint64_t h0 = KeyspaceHits(*nodes[0]);
      absl::Time t0 = absl::Now();
      std::vector<std::thread> th;
      std::vector<uint64_t> seen(stores.size(), 0);
      for (size_t i = 0; i < stores.size(); ++i) {
        th.emplace_back([&, i] {
          std::string after;
          while (true) {
            auto page = stores[i]->Scan(shard, epoch, after, 1000);
            if (!page.ok() || page->empty()) break;
            seen[i] += page->size();
            after = page->back().pk;
          }
        });
      }
      for (auto& t : th) t.join();
      *best = std::min(*best, absl::ToDoubleSeconds(absl::Now() - t0));
      *hits = KeyspaceHits(*nodes[0]) - h0;
      if (seen[0] != static_cast<uint64_t>(docs)) return false;
    }
    return true;
  };
  double best_scan = 0, best_scan_any = 0;
  uint64_t scan_hits = 0, scan_any_hits = 0;
  if (!plain_scan(1, &best_scan, &scan_hits) ||
      !plain_scan(miroir::kAnyEpoch, &best_scan_any, &scan_any_hits)) {
    std::fprintf(stderr, "ae_driver: a scan did not see every document\n");
    return 1;
  }

  // 2. A healthy AE pass, as the worker runs it.
  double best_ae = 1e18;
  uint64_t ae_hits = 0;
  miroir::v1::TaskResult result;
  for (int run = 0; run < runs; ++run) {
    miroir::TaskContext ctx;
    ctx.task.set_kind(miroir::v1::TASK_AE_PASS);
    ctx.task.set_index(shard.index);
    ctx.task.set_generation(shard.generation);
    ctx.task.set_shards(1);
    ctx.task.set_shard(0);
    ctx.task.set_epoch(1);
    ctx.task.add_sources("r0");
    ctx.task.add_sources("r1");
    ctx.task.set_batch_size(1000);
    ctx.task.set_ae_buckets(256);
    ctx.task.set_repair(true);
    ctx.store =
        [&](const std::string& id) -> absl::StatusOr<std::shared_ptr<miroir::StoreAdapter>> {
      return stores[id == "r0" ? 0 : 1];
    };
    ctx.checkpoint = [](const miroir::v1::Checkpoint&) { return true; };
    ctx.cancelled = [] { return false; };
    ctx.on_copied = [](uint64_t) {};
    const uint64_t h0 = KeyspaceHits(*nodes[0]);
    absl::Time t0 = absl::Now();
    auto r = miroir::RunAePass(ctx);
    best_ae = std::min(best_ae, absl::ToDoubleSeconds(absl::Now() - t0));
    ae_hits = KeyspaceHits(*nodes[0]) - h0;
    if (!r.ok()) return Fail(r.status(), "ae pass");
    result = *r;
  }
  if (result.mismatches() != 0 || result.documents() != 0) {
    std::fprintf(stderr, "ae_driver: a healthy pass found %llu mismatches\n",
                 static_cast<unsigned long long>(result.mismatches()));
    return 1;
  }

  const double n2 = 2.0 * docs;
  std::printf(
      "## Anti-entropy digest vs. plain scan (%d documents x 2 replicas, %d-byte "
      "bodies, best of %d)\n\n",
      docs, body, runs);
  std::printf(
      "| read | seconds | documents/s (both replicas) | ratio to plain scan | keyspace "
      "hits on r0 |\n|---|---|---|---|---|\n");
  std::printf(
      "| plain full keyset scan at the pass's epoch (Scan pages of 1000, 1 thread per "
      "replica) | %.3f | %.0f | 1.00 | %llu |\n",
      best_scan, n2 / best_scan, static_cast<unsigned long long>(scan_hits));
  std::printf(
      "| plain full keyset scan with kAnyEpoch (no fence check) | %.3f | %.0f | %.2f | "
      "%llu |\n",
      best_scan_any, n2 / best_scan_any, best_scan / best_scan_any,
      static_cast<unsigned long long>(scan_any_hits));
  std::printf(
      "| healthy AE pass (256 buckets, pages of 1000, roots equal) | %.3f | %.0f | "
      "%.2f | %llu |\n",
      best_ae, n2 / best_ae, best_scan / best_ae, static_cast<unsigned long long>(ae_hits));
  std::printf(
      "\nA healthy pass wrote nothing (0 mismatches, 0 repair writes) and read "
      "%.2f keyspace hits per document on r0 (the plain scan: %.2f).\n",
      static_cast<double>(ae_hits) / docs, static_cast<double>(scan_hits) / docs);
  return 0;
}
