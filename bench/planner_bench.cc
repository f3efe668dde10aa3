// Planning a topology change for S=4096, 1,024 nodes in 4 groups, RF=2 (issue 3:
// target < 50 ms), against a baseline that only computes the rendezvous owners
// of every shard in the changed group (the least any planner must do).
#include <benchmark/benchmark.h>

#include "absl/strings/str_cat.h"
#include "common/routing.h"
#include "coordinator/planner.h"
#include "coordinator/routing_tables.h"

namespace miroir::coordinator {
namespace {

constexpr uint32_t kShards = 4096;
constexpr uint32_t kRf = 2;
constexpr int kGroups = 4;
constexpr int kNodesPerGroup = 256;

const ClusterState& State() {
  static const ClusterState* state = [] {
    auto* s = new ClusterState;
    s->initialized = true;
    std::vector<GroupNodes> groups;
    for (int g = 0; g < kGroups; ++g) {
      GroupNodes gn{absl::StrCat("g", g), {}};
      s->group_order.push_back(gn.group);
      for (int n = 0; n < kNodesPerGroup; ++n) {
        v1::Node node;
        node.set_id(absl::StrCat("g", g, "-n", n));
        node.set_group(gn.group);
        node.set_address("127.0.0.1:1");
        node.set_status(v1::NODE_ACTIVE);
        s->nodes[node.id()] = node;
        gn.nodes.push_back(node.id());
      }
      groups.push_back(gn);
    }
    v1::Index ix;
    ix.set_name("products");
    ix.set_shards(kShards);
    ix.set_rf(kRf);
    ix.set_live_generation(1);
    s->indexes["products"] = ix;
    s->generations[1] = BuildInitialRoute("products", 1, kShards, kRf, groups);
    return s;
  }();
  return *state;
}

void BM_BaselineOwnersOfEveryShardInOneGroup(benchmark::State& st) {
  std::vector<std::string> nodes;
  for (int n = 0; n <= kNodesPerGroup; ++n) nodes.push_back(absl::StrCat("g0-n", n));
  for (auto _ : st) {
    size_t total = 0;
    for (uint32_t s = 0; s < kShards; ++s) total += Owners(s, nodes, kRf).size();
    benchmark::DoNotOptimize(total);
  }
}
BENCHMARK(BM_BaselineOwnersOfEveryShardInOneGroup)->Unit(benchmark::kMillisecond);

void BM_PlanAddNode(benchmark::State& st) {
  const ClusterState& s = State();
  PlanRequest req;
  req.kind = v1::PLAN_ADD_NODE;
  req.node_id = "g0-new";
  req.group = "g0";
  req.address = "127.0.0.1:9";
  size_t moves = 0;
  for (auto _ : st) {
    auto d = PlanChange(s, req, {});
    moves = d->plan.moves_size();
    benchmark::DoNotOptimize(d);
  }
  st.counters["moves"] = static_cast<double>(moves);
}
BENCHMARK(BM_PlanAddNode)->Unit(benchmark::kMillisecond);

void BM_PlanRemoveNode(benchmark::State& st) {
  const ClusterState& s = State();
  PlanRequest req;
  req.kind = v1::PLAN_REMOVE_NODE;
  req.node_id = "g1-n7";
  size_t moves = 0;
  for (auto _ : st) {
    auto d = PlanChange(s, req, {});
    moves = d->plan.moves_size();
    benchmark::DoNotOptimize(d);
  }
  st.counters["moves"] = static_cast<double>(moves);
}
BENCHMARK(BM_PlanRemoveNode)->Unit(benchmark::kMillisecond);

void BM_PlanAddGroup(benchmark::State& st) {
  const ClusterState& s = State();
  PlanRequest req;
  req.kind = v1::PLAN_ADD_GROUP;
  req.group = "g9";
  for (int n = 0; n < kNodesPerGroup; ++n) {
    v1::Node node;
    node.set_id(absl::StrCat("g9-n", n));
    node.set_address("127.0.0.1:1");
    req.nodes.push_back(node);
  }
  size_t moves = 0;
  for (auto _ : st) {
    auto d = PlanChange(s, req, {});
    moves = d->plan.moves_size();
    benchmark::DoNotOptimize(d);
  }
  st.counters["moves"] = static_cast<double>(moves);
}
BENCHMARK(BM_PlanAddGroup)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace miroir::coordinator

BENCHMARK_MAIN();
