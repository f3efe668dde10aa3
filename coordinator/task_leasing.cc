#include "coordinator/task_leasing.h"

#include <algorithm>

namespace miroir::coordinator {
namespace {

// The worker with the most free slots above `floor`, or "" when none has any.
std::string Best(const std::map<std::string, int64_t>& free, int64_t floor) {
  std::string best;
  int64_t best_free = floor;
  for (const auto& [w, f] : free) {
    if (f > best_free) {
      best = w;
      best_free = f;
    }
  }
  return best;
}

bool Touches(const PendingTask& t, const std::set<std::string>& nodes) {
  for (const auto& n : t.nodes) {
    if (nodes.count(n)) return true;
  }
  return false;
}

}  // namespace

std::vector<LeaseChoice> ChooseLeases(const std::vector<PendingTask>& pending,
                                      std::map<std::string, int64_t> free,
                                      const std::set<std::string>& cutover_nodes,
                                      int64_t cutover_slots) {
  std::vector<LeaseChoice> out;
  for (const bool cutover : {true, false}) {
    for (const PendingTask& t : pending) {
      if (t.holds_writes != cutover) continue;
      if (!cutover && Touches(t, cutover_nodes)) continue;
      const std::string w = Best(free, cutover ? -cutover_slots : 0);
      if (w.empty()) break;
      --free[w];
      out.push_back({t.id, w});
    }
  }
  return out;
}

bool IsDestructiveTask(const miroir::v1::Task& task) {
  switch (task.kind()) {
    case miroir::v1::TASK_PREPARE:
    case miroir::v1::TASK_CLEANUP:
      return true;
    case miroir::v1::TASK_AE_PASS:
      return task.repair() && task.purge_tombstones_before_ms() > 0;
    default:
      return false;
  }
}

LeaseEpoch EpochForLease(uint64_t task_epoch, uint64_t published, bool fixed, bool destructive,
                         bool leased_before) {
  if (fixed) return {task_epoch, false};
  if (!destructive) return {std::max(task_epoch, published), false};
  if (leased_before && published <= task_epoch) return {published + 1, true};
  return {published, false};
}

}  // namespace miroir::coordinator
