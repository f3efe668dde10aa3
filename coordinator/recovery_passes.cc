#include "coordinator/recovery_passes.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <vector>

#include "common/route_sets.h"

namespace miroir::coordinator {
namespace {

using Strings = std::vector<std::string>;

bool Contains(const Strings& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Generations workers write to (the ones the view carries).
bool Written(const v1::GenerationRoute& g) {
  return g.role() == v1::GENERATION_LIVE || g.role() == v1::GENERATION_SHADOW ||
         g.role() == v1::GENERATION_RETAINED;
}

// Write-set nodes of `route` not marked failed, in route order (once each);
// only those of `group` when it is not empty.
Strings WriteNodes(const v1::ShardRoute& route, const std::set<std::string>& failed,
                   const std::string& group = "") {
  Strings out;
  for (const auto& ws : WriteSet(route)) {
    if (!group.empty() && ws.group() != group) continue;
    for (const auto& n : ws.nodes()) {
      if (!failed.count(n) && !Contains(out, n)) out.push_back(n);
    }
  }
  return out;
}

// A shard pass: every write-set node a target, no separate sources.
bool IsShardPass(const v1::Task& t) {
  return IsRecoveryPass(t) && t.sources_size() == 0 && t.targets_size() >= 2;
}

v1::Task NewPass(const ClusterState& s, Change* change, const v1::GenerationRoute& gen,
                 uint32_t shard, const Strings& sources, const Strings& targets,
                 uint32_t batch_size) {
  v1::Task t = NewShardTask(s, change, v1::TASK_RECONCILE, gen, shard, s.epoch, sources, targets,
                            batch_size);
  t.set_repair(true);
  return t;
}

const v1::ShardRoute* RouteIn(const ClusterState& s, uint64_t generation, uint32_t shard) {
  auto g = s.generations.find(generation);
  if (g == s.generations.end() || shard >= static_cast<uint32_t>(g->second.routes_size())) {
    return nullptr;
  }
  return &g->second.routes(static_cast<int>(shard));
}

}  // namespace

bool IsRecoveryPass(const v1::Task& t) {
  return t.move_id() == 0 && t.kind() == v1::TASK_RECONCILE;
}

bool IsMissPass(const v1::Task& t) { return IsRecoveryPass(t) && t.targets_size() == 1; }

bool NotStarted(const TaskRecord& t) {
  return t.status == TaskRecord::Status::kPending || t.status == TaskRecord::Status::kFailed;
}

RouteOf StateRoutes(const ClusterState& s) {
  return [&s](uint64_t generation, uint32_t shard) { return RouteIn(s, generation, shard); };
}

std::optional<v1::Task> RecomputeRecoveryPass(const ClusterState& s, const v1::Task& pass,
                                              const v1::ShardRoute& route) {
  auto gen = s.generations.find(pass.generation());
  if (gen == s.generations.end() || !Written(gen->second)) return std::nullopt;
  const std::set<std::string> failed = s.FailedNodes();
  const Strings all = WriteNodes(route, failed);
  Strings targets;
  if (IsShardPass(pass)) {
    if (all.size() < 2) return std::nullopt;
    targets = all;
  } else {
    for (const auto& target : pass.targets()) {
      if (failed.count(target)) continue;  // the restore that replaces it covers it
      if (Contains(all, target)) {
        if (!Contains(targets, target)) targets.push_back(target);
        continue;
      }
      // Its shard moved away from it: the group's current write-set nodes
      // inherited its copy, and with it the writes it missed.
      auto node = s.nodes.find(target);
      if (node == s.nodes.end()) continue;
      for (const auto& n : WriteNodes(route, failed, node->second.group())) {
        if (!Contains(targets, n)) targets.push_back(n);
      }
    }
    if (targets.empty()) return std::nullopt;
  }
  v1::Task t = pass;
  t.clear_sources();
  t.clear_targets();
  if (!IsShardPass(pass)) {
    for (const auto& n : all) {
      if (!Contains(targets, n)) t.add_sources(n);
    }
  }
  for (const auto& n : targets) t.add_targets(n);
  return t;
}

uint32_t ScheduleMissPasses(const ClusterState& s, const v1::MissReport& report,
                            uint32_t batch_size, Change* change) {
  using Key = std::tuple<std::string, uint64_t, uint32_t>;  // target, generation, shard
  std::set<Key> covered;
  for (const auto& [id, t] : s.tasks) {
    if (IsMissPass(t.task) && NotStarted(t)) {
      covered.insert({t.task.targets(0), t.task.generation(), t.task.shard()});
    }
  }
  for (const auto& [id, t] : change->tasks) {
    if (IsMissPass(t)) covered.insert({t.targets(0), t.generation(), t.shard()});
  }
  const std::set<std::string> failed = s.FailedNodes();
  uint32_t added = 0;
  auto schedule = [&](const v1::GenerationRoute& gen, uint32_t shard, const std::string& node) {
    if (shard >= static_cast<uint32_t>(gen.routes_size())) return;
    const Strings all = WriteNodes(gen.routes(static_cast<int>(shard)), failed);
    // A node that left the shard's write set since (an aborted move's joining
    // node, a drained owner) must not be given the shard back.
    if (!Contains(all, node)) return;
    if (!covered.insert({node, gen.generation(), shard}).second) return;
    Strings sources;
    for (const auto& n : all) {
      if (n != node) sources.push_back(n);
    }
    v1::Task t = NewPass(s, change, gen, shard, sources, {node}, batch_size);
    change->tasks[t.id()] = t;
    ++added;
  };
  for (const v1::Miss& miss : report.misses()) {
    if (!s.nodes.count(miss.node())) continue;
    if (miss.all_shards()) {
      for (const auto& [id, gen] : s.generations) {
        if (!Written(gen)) continue;
        for (uint32_t shard = 0; shard < gen.shards(); ++shard) schedule(gen, shard, miss.node());
      }
      continue;
    }
    auto gen = s.generations.find(miss.generation());
    if (gen == s.generations.end()) {
      const v1::Index* ix = s.FindIndex(miss.index());
      if (!ix) continue;
      gen = s.generations.find(ix->live_generation());
      if (gen == s.generations.end()) continue;
    }
    if (!Written(gen->second)) continue;
    schedule(gen->second, miss.shard(), miss.node());
  }
  return added;
}

uint32_t ScheduleShardPasses(const ClusterState& s, uint32_t batch_size, Change* change) {
  std::set<std::pair<uint64_t, uint32_t>> covered;
  for (const auto& [id, t] : s.tasks) {
    if (IsShardPass(t.task) && NotStarted(t)) covered.insert({t.task.generation(), t.task.shard()});
  }
  for (const auto& [id, t] : change->tasks) {
    if (IsShardPass(t)) covered.insert({t.generation(), t.shard()});
  }
  const std::set<std::string> failed = s.FailedNodes();
  uint32_t added = 0;
  for (const auto& [id, gen] : s.generations) {
    if (!Written(gen)) continue;
    for (uint32_t shard = 0; shard < static_cast<uint32_t>(gen.routes_size()); ++shard) {
      const Strings all = WriteNodes(gen.routes(static_cast<int>(shard)), failed);
      if (all.size() < 2) continue;  // one replica: nothing to compare it with
      if (!covered.insert({gen.generation(), shard}).second) continue;
      v1::Task t = NewPass(s, change, gen, shard, {}, all, batch_size);
      change->tasks[t.id()] = t;
      ++added;
    }
  }
  return added;
}

RecoveryPassStep StepRecoveryPass(const ClusterState& s, const TaskRecord& t,
                                  const RouteOf& routes) {
  RecoveryPassStep step;
  if (t.status == TaskRecord::Status::kDone) {
    step.action = RecoveryPassStep::Action::kDelete;
    step.reason = "done";
    return step;
  }
  if (!NotStarted(t)) return step;  // leased: its holder reports
  const v1::ShardRoute* route = routes(t.task.generation(), t.task.shard());
  std::optional<v1::Task> now =
      route == nullptr ? std::nullopt : RecomputeRecoveryPass(s, t.task, *route);
  if (!now) {
    step.action = RecoveryPassStep::Action::kDelete;
    step.reason = "no longer needed: its target was marked failed or left the write set";
    return step;
  }
  auto same = [](const auto& a, const auto& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  };
  if (!same(now->sources(), t.task.sources()) || !same(now->targets(), t.task.targets())) {
    step.action = RecoveryPassStep::Action::kUpdate;
    step.task = std::move(*now);
  }
  return step;
}

}  // namespace miroir::coordinator
