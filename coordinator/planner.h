// Planner: turns one operator intent (add/remove node, add/remove group,
// restore, rejoin) into the minimal set of per-shard moves (DESIGN §6), with
// their sources and estimates. Pure: reads a ClusterState snapshot, no I/O, safe
// from any thread. Validation errors name the field and change nothing.
#ifndef MIROIR_COORDINATOR_PLANNER_H_
#define MIROIR_COORDINATOR_PLANNER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/cluster_state.h"
#include "coordinator/move_gates.h"

namespace miroir::coordinator {

struct PlanRequest {
  v1::PlanKind kind = v1::PLAN_KIND_UNSPECIFIED;
  std::string node_id;
  std::string group;
  std::string address;
  std::string store;
  std::vector<v1::Node> nodes;  // add-group
  uint64_t throttle_docs_per_s = 0;
};

struct PlanDraft {
  v1::Plan plan;                // kind, description, node_id, group, moves (ids 0), estimates
  std::vector<v1::Node> nodes;  // nodes created or whose status changes when the plan starts
  std::vector<std::string> group_order;  // new group order (add-group), else empty
};

// Nominal copy rate used for the duration estimate when the plan is unthrottled.
inline constexpr uint64_t kNominalDocsPerSecond = 20000;

// Plans `req` against `state`. INVALID_ARGUMENT / NOT_FOUND / ALREADY_EXISTS for
// bad input, FAILED_PRECONDITION when the topology forbids it (e.g. a group left
// smaller than an index's rf, or no source can serve a shard).
absl::StatusOr<PlanDraft> PlanChange(const ClusterState& state, const PlanRequest& req,
                                     const std::map<std::string, NodeHealth>& health);

// Sources of a move of `shard` in `group` (DESIGN §6): the live old owners of the
// group when at least rf−q+1 of them can serve, else the live owners of another
// group; for a removed group (new_owners empty) every live owner of every group.
// FAILED_PRECONDITION when no group can serve.
absl::StatusOr<std::vector<std::string>> ChooseSources(const v1::ShardRoute& route,
                                                       const v1::Move& move, uint32_t rf,
                                                       const std::set<std::string>& failed,
                                                       const std::vector<std::string>& group_order);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_PLANNER_H_
