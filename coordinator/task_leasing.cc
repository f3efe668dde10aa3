#include "coordinator/task_leasing.h"

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

}  // namespace miroir::coordinator
