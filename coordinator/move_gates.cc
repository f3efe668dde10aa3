#include "coordinator/move_gates.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/move_machine.h"

namespace miroir::coordinator {

absl::Status CheckDeltaSkipGate(bool skip_delta_pass, const CoordinatorConfig& config) {
  if (skip_delta_pass && !config.anti_entropy.enabled && !config.test_allow_unsafe_skip_delta) {
    return absl::FailedPreconditionError(absl::StrCat("plan refused: ", kDeltaSkipRefusal));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TimeWindow>> PlanWindows(const std::string& plan_window,
                                                    const CoordinatorConfig& config) {
  std::vector<std::string> names = plan_window.empty() ? config.migration.allowed_windows
                                                       : std::vector<std::string>{plan_window};
  auto resolved = ResolveWindows(names, config.schedule_windows);
  if (!resolved.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule_window: ", resolved.status().message()));
  }
  return resolved;
}

absl::Status CheckWindowGate(const std::vector<TimeWindow>& windows, int64_t now_ms, bool force) {
  if (force || InsideAnyWindow(windows, now_ms)) return absl::OkStatus();
  std::vector<std::string> ranges;
  for (const auto& w : windows)
    ranges.push_back(w.name == w.Range() ? w.Range() : w.name + " " + w.Range());
  return absl::FailedPreconditionError(absl::StrCat(
      "plan refused: now (", UtcHourMinute(now_ms), " UTC) is outside the schedule window(s) ",
      absl::StrJoin(ranges, ", "), "; use force to start anyway"));
}

absl::Status CheckCapacityGate(const std::vector<v1::Move>& moves,
                               const std::map<std::string, NodeHealth>& health,
                               double headroom_fraction) {
  std::map<std::string, uint64_t> incoming;
  for (const auto& m : moves) {
    std::set<std::string> old_owners(m.old_owners().begin(), m.old_owners().end());
    for (const auto& n : m.new_owners()) {
      if (!old_owners.count(n)) incoming[n] += m.est_bytes();
    }
  }
  for (const auto& [node, bytes] : incoming) {
    auto it = health.find(node);
    if (it == health.end() || it->second.capacity_bytes == 0) continue;
    const NodeHealth& h = it->second;
    const uint64_t holds = std::max(h.total_bytes, h.used_bytes);
    const double need = static_cast<double>(holds + bytes) +
                        headroom_fraction * static_cast<double>(h.capacity_bytes);
    if (need > static_cast<double>(h.capacity_bytes)) {
      return absl::FailedPreconditionError(
          absl::StrCat("plan refused: target node ", node, " lacks capacity: holds ", holds,
                       " bytes, would receive ", bytes, " of ", h.capacity_bytes, " with ",
                       static_cast<int>(headroom_fraction * 100), "% headroom"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckTargetHealthGate(const std::vector<v1::Move>& moves, const ClusterState& state,
                                   const std::map<std::string, NodeHealth>& health,
                                   const std::string& rejoining) {
  for (const auto& m : moves) {
    std::set<std::string> old_owners(m.old_owners().begin(), m.old_owners().end());
    for (const auto& n : m.new_owners()) {
      if (old_owners.count(n)) continue;
      auto node = state.nodes.find(n);
      if (node != state.nodes.end() && node->second.status() == v1::NODE_FAILED && n != rejoining) {
        return absl::FailedPreconditionError(
            absl::StrCat("plan refused: target node ", n, " is marked failed"));
      }
      auto h = health.find(n);
      if (h != health.end() && !h->second.reachable) {
        return absl::FailedPreconditionError(absl::StrCat(
            "plan refused: target node ", n, " is not healthy (unreachable in the last report)"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckConflictGate(const std::vector<v1::Move>& moves, v1::PlanKind kind,
                               const ClusterState& state) {
  std::map<std::tuple<std::string, uint64_t, uint32_t>, const v1::Move*> busy;
  for (const auto& [id, m] : state.moves) {
    if (MoveMachine::IsTerminal(m.state())) continue;
    auto plan = state.plans.find(m.plan_id());
    if (plan != state.plans.end() &&
        (plan->second.state() == v1::PLAN_ABORTED || plan->second.state() == v1::PLAN_DONE)) {
      continue;
    }
    busy[{m.index(), m.generation(), m.shard()}] = &m;
  }
  std::set<std::string> indexes;
  for (const auto& m : moves) {
    auto it = busy.find({m.index(), m.generation(), m.shard()});
    if (it != busy.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("plan refused: conflict: shard ", m.shard(), " of index ", m.index(),
                       " is mid-move in plan ", it->second->plan_id(), " (move ", it->second->id(),
                       ", ", MoveStateName(it->second->state()), ")"));
    }
    indexes.insert(m.index());
  }
  if (kind == v1::PLAN_RESTORE) return absl::OkStatus();
  for (const auto& [id, g] : state.generations) {
    if (!indexes.count(g.index())) continue;
    if (g.role() == v1::GENERATION_SHADOW || g.role() == v1::GENERATION_RETAINED) {
      return absl::FailedPreconditionError(absl::StrCat(
          "plan refused: conflict: index ", g.index(), " has a reshard ",
          g.role() == v1::GENERATION_SHADOW ? "active" : "in retention", " (generation ", id, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace miroir::coordinator
