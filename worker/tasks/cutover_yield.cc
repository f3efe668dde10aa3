#include "worker/tasks/cutover_yield.h"

#include "common/route_sets.h"
#include "common/task_kinds.h"

namespace miroir {

bool YieldsToCutovers(const v1::Task& t) {
  switch (t.kind()) {
    case v1::TASK_BACKFILL:
    case v1::TASK_CATCH_UP:
    case v1::TASK_RECONCILE:
    case v1::TASK_VERIFY:
    case v1::TASK_AE_PASS:
    case v1::TASK_RESHARD_BACKFILL:
    case v1::TASK_RESHARD_VERIFY:
      return true;
    case v1::TASK_RESHARD_DELTA:
      return !IsFinalDelta(t);  // a catch-up pass yields; the swap's final delta is the cutover
    default:
      return false;
  }
}

namespace {

bool RouteTouches(const v1::GenerationRoute& g, const absl::flat_hash_set<std::string>& nodes) {
  bool touches = false;
  for (const auto& r : g.routes()) {
    ForEachRouteNode(r, [&](const std::string& n) { touches = touches || nodes.contains(n); });
    if (touches) return true;
  }
  return false;
}

}  // namespace

bool TouchesCutover(const v1::Task& t, const absl::flat_hash_set<std::string>& cutover_nodes) {
  if (cutover_nodes.empty()) return false;
  for (const auto* ids : {&t.sources(), &t.targets()}) {
    for (const auto& id : *ids) {
      if (cutover_nodes.contains(id)) return true;
    }
  }
  return RouteTouches(t.target_route(), cutover_nodes) ||
         RouteTouches(t.source_route(), cutover_nodes);
}

}  // namespace miroir
