#include "coordinator/anti_entropy_scheduler.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "coordinator/move_machine.h"
#include "coordinator/node_rejoin.h"

namespace miroir::coordinator {

std::string AePassKey(const std::string& index, uint64_t generation, uint32_t shard) {
  return absl::StrCat(index, "/", generation, "/", shard);
}

std::vector<AeShard> RunScope(const ClusterState& s, const v1::AntiEntropyRun& run) {
  std::vector<AeShard> out;
  for (const auto& [name, index] : s.indexes) {  // name order
    if (!run.index().empty() && name != run.index()) continue;
    auto g = s.generations.find(index.live_generation());
    if (g == s.generations.end()) continue;
    const uint32_t shards = g->second.shards();
    uint32_t from = 0, to = shards == 0 ? 0 : shards - 1;
    if (run.has_shards()) {
      from = run.shard_from();
      to = std::min(run.shard_to(), to);
    }
    for (uint32_t sh = from; shards > 0 && sh <= to; ++sh) {
      out.push_back(AeShard{name, g->first, shards, sh});
    }
  }
  return out;
}

std::vector<AeShard> NextShards(const ClusterState& s, v1::AntiEntropyRun* run, size_t n) {
  std::vector<AeShard> scope = RunScope(s, *run);
  std::vector<AeShard> out;
  if (scope.empty()) return out;
  // Position of the cursor: the first shard at or after (cursor_index, cursor_shard).
  auto at_or_after = [&](const AeShard& a) {
    return a.index > run->cursor_index() ||
           (a.index == run->cursor_index() && a.shard >= run->cursor_shard());
  };
  size_t pos = 0;
  while (pos < scope.size() && !at_or_after(scope[pos])) ++pos;
  while (out.size() < n && run->issued() < run->total()) {
    if (pos >= scope.size()) {
      if (!run->scheduled() || run->cursor_wrapped()) break;
      run->set_cursor_wrapped(true);
      pos = 0;
    }
    out.push_back(scope[pos]);
    run->set_issued(run->issued() + 1);
    ++pos;
    if (pos < scope.size()) {
      run->set_cursor_index(scope[pos].index);
      run->set_cursor_shard(scope[pos].shard);
    } else {
      // Past the last shard: a cursor no shard is at or after.
      run->set_cursor_index(scope.back().index);
      run->set_cursor_shard(scope.back().shard + 1);
    }
  }
  return out;
}

std::string BusyReason(const ClusterState& s, const AeShard& shard) {
  for (const auto& [id, m] : s.moves) {
    if (m.generation() == shard.generation && m.shard() == shard.shard &&
        !MoveMachine::IsTerminal(m.state())) {
      return absl::StrCat("move ", id, " on the shard is ", MoveStateName(m.state()));
    }
  }
  auto ix = s.indexes.find(shard.index);
  if (ix != s.indexes.end()) {
    for (const auto& g : ix->second.generations()) {
      if (g.role() == v1::GENERATION_SHADOW || g.role() == v1::GENERATION_RETAINED) {
        return absl::StrCat("index ", shard.index, " has a reshard ",
                            g.role() == v1::GENERATION_SHADOW ? "active" : "in retention");
      }
    }
  }
  return "";
}

std::vector<std::string> PassReplicas(const ClusterState& s, const AeShard& shard,
                                      bool* all_reached) {
  std::vector<std::string> out;
  *all_reached = true;
  auto g = s.generations.find(shard.generation);
  if (g == s.generations.end() || shard.shard >= static_cast<uint32_t>(g->second.routes_size())) {
    *all_reached = false;
    return out;
  }
  const std::set<std::string> failed = s.FailedNodes();
  for (const auto& grp : g->second.routes(static_cast<int>(shard.shard)).owners()) {
    for (const auto& n : grp.nodes()) {
      if (failed.count(n)) {
        // Failed: not read. It still counts as a replica for the purge rule until
        // it rejoins or is forgotten (DESIGN §6, Node rejoin).
        auto node = s.nodes.find(n);
        if (node == s.nodes.end() || HoldsBackPurges(node->second)) *all_reached = false;
      } else if (std::find(out.begin(), out.end(), n) == out.end()) {
        out.push_back(n);
      }
    }
  }
  return out;
}

int64_t PurgeBound(int64_t now_ms, const AntiEntropyConfig& cfg, absl::Duration max_clock_drift,
                   bool repair, bool all_replicas) {
  if (!repair || !all_replicas) return 0;
  const int64_t bound = now_ms - absl::ToInt64Milliseconds(cfg.tombstone_grace) -
                        absl::ToInt64Milliseconds(max_clock_drift);
  return std::max<int64_t>(bound, 0);
}

v1::Task MakePassTask(const ClusterState& s, const AeShard& shard, const v1::AntiEntropyRun& run,
                      const AntiEntropyConfig& cfg, absl::Duration max_clock_drift,
                      int64_t now_ms) {
  v1::Task t;
  t.set_kind(v1::TASK_AE_PASS);
  t.set_index(shard.index);
  t.set_generation(shard.generation);
  t.set_shards(shard.shards);
  t.set_shard(shard.shard);
  bool all = false;
  for (const auto& n : PassReplicas(s, shard, &all)) t.add_sources(n);
  t.set_batch_size(static_cast<uint32_t>(cfg.fingerprint_batch_size));
  t.set_repair(run.repair());
  t.set_ae_buckets(static_cast<uint32_t>(cfg.buckets));
  t.set_purge_tombstones_before_ms(PurgeBound(now_ms, cfg, max_clock_drift, run.repair(), all));
  t.set_ae_run_id(run.id());
  return t;
}

v1::ShardPass FoldPass(const v1::Task& task, const v1::TaskResult& result, const std::string& error,
                       int64_t now_ms, v1::AntiEntropyRun* run) {
  v1::ShardPass p;
  p.set_index(task.index());
  p.set_generation(task.generation());
  p.set_shard(task.shard());
  p.set_run_id(task.ae_run_id());
  p.set_finished_ms(now_ms);
  p.set_repair(task.repair());
  if (!error.empty()) {
    p.set_error(error);
    run->set_failed(run->failed() + 1);
    return p;
  }
  p.set_replicas_reached(result.replicas_reached());
  p.set_mismatches(result.mismatches());
  p.set_repaired(task.repair() ? result.documents() : 0);
  p.set_conflicts(result.conflicts());
  p.set_unresolved_conflicts(result.unresolved_conflicts());
  p.set_expired(result.expired());
  p.set_purged_tombstones(result.purged_tombstones());
  for (const auto& k : result.divergent_keys()) p.add_divergent_keys(k);
  run->set_done(run->done() + 1);
  run->set_mismatches(run->mismatches() + p.mismatches());
  run->set_repaired(run->repaired() + p.repaired());
  run->set_conflicts(run->conflicts() + p.conflicts());
  run->set_purged_tombstones(run->purged_tombstones() + p.purged_tombstones());
  return p;
}

}  // namespace miroir::coordinator
