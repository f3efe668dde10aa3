// Routing micro-benchmarks (DESIGN §3): ShardForKey and the whole write lookup
// (ShardForKey + WriteTargets) for S=4096, RG=2 groups of 64 nodes, RF=2, against a
// baseline of raw XXH64 over the same keys in the same run, so the numbers read as
// ratios. Results and the machine: docs/benchmarks/routing.md.
#include <benchmark/benchmark.h>
#include <xxhash.h>

#include <string>
#include <vector>

#include "common/routing.h"

namespace miroir {
namespace {

constexpr uint32_t kShards = 4096;
constexpr uint32_t kRf = 2;
constexpr int kNodesPerGroup = 64;

const std::vector<std::string>& Keys() {
  static const auto* keys = [] {
    auto* k = new std::vector<std::string>();
    for (int64_t i = 0; i < 4096; ++i) k->push_back("user:" + std::to_string(1000003 * i));
    return k;
  }();
  return *keys;
}

const std::vector<GroupNodes>& Groups() {
  static const auto* groups = [] {
    auto* g = new std::vector<GroupNodes>();
    for (int gi = 0; gi < 2; ++gi) {
      GroupNodes group{"g" + std::to_string(gi), {}};
      for (int n = 0; n < kNodesPerGroup; ++n) {
        group.nodes.push_back("node-" + std::to_string(gi) + "-" + std::to_string(n));
      }
      g->push_back(std::move(group));
    }
    return g;
  }();
  return *groups;
}

// Baseline: one-shot XXH64 of the key bytes, no terminator, no modulo.
void BM_Baseline_RawXxh64(benchmark::State& state) {
  const auto& keys = Keys();
  size_t i = 0;
  for (auto _ : state) {
    const std::string& k = keys[i++ & 4095];
    benchmark::DoNotOptimize(XXH64(k.data(), k.size(), 0));
  }
}
BENCHMARK(BM_Baseline_RawXxh64);

void BM_ShardForKey(benchmark::State& state) {
  const auto& keys = Keys();
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(ShardForKey(keys[i++ & 4095], kShards));
}
BENCHMARK(BM_ShardForKey);

// Baseline for the owner computation: one raw XXH64 per node of both groups.
void BM_Baseline_RawXxh64PerNode(benchmark::State& state) {
  const auto& groups = Groups();
  uint32_t shard = 0;
  for (auto _ : state) {
    uint64_t acc = 0;
    for (const auto& g : groups) {
      for (const auto& n : g.nodes) acc ^= XXH64(n.data(), n.size(), shard);
    }
    benchmark::DoNotOptimize(acc);
    shard = (shard + 1) % kShards;
  }
}
BENCHMARK(BM_Baseline_RawXxh64PerNode);

void BM_WriteTargets(benchmark::State& state) {
  const auto& groups = Groups();
  uint32_t shard = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(WriteTargets(shard, groups, kRf));
    shard = (shard + 1) % kShards;
  }
}
BENCHMARK(BM_WriteTargets);

// The whole lookup a router does per key without a precomputed table.
void BM_WholeLookup(benchmark::State& state) {
  const auto& keys = Keys();
  const auto& groups = Groups();
  size_t i = 0;
  for (auto _ : state) {
    const uint32_t shard = ShardForKey(keys[i++ & 4095], kShards);
    benchmark::DoNotOptimize(WriteTargets(shard, groups, kRf));
  }
}
BENCHMARK(BM_WholeLookup);

// What a router does per key once owners are precomputed for the topology
// (the worker routes by the coordinator's stored table the same way).
void BM_WholeLookup_OwnerTable(benchmark::State& state) {
  const auto& keys = Keys();
  static const OwnerTable table(kShards, Groups(), kRf);
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(&table.WriteTargetsForKey(keys[i++ & 4095]));
}
BENCHMARK(BM_WholeLookup_OwnerTable);

// One-time cost of building that table for the whole topology.
void BM_BuildOwnerTable(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(OwnerTable(kShards, Groups(), kRf));
}
BENCHMARK(BM_BuildOwnerTable)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace miroir

BENCHMARK_MAIN();
