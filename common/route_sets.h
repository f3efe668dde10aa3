// The write, acking and read sets of a shard route (DESIGN §2, §4, §6). A route
// whose sets equal its owners stores them once (`ShardRoute.sets_are_owners`),
// so every reader goes through these functions. Pure, no I/O, any thread.
#ifndef MIROIR_COMMON_ROUTE_SETS_H_
#define MIROIR_COMMON_ROUTE_SETS_H_

#include "miroir/v1/types.pb.h"

namespace miroir {

using GroupSets = google::protobuf::RepeatedPtrField<v1::GroupOwners>;

// Nodes that receive every write to the shard, per group.
inline const GroupSets& WriteSet(const v1::ShardRoute& r) {
  return r.sets_are_owners() ? r.owners() : r.write_set();
}

// Nodes whose applies count toward the write quorum, per group.
inline const GroupSets& AckingSet(const v1::ShardRoute& r) {
  return r.sets_are_owners() ? r.owners() : r.acking_set();
}

// Nodes reads may use, per group: the owners minus failed nodes and nodes
// joining the shard (the worker also leaves out pending exclusions).
inline const GroupSets& ReadSet(const v1::ShardRoute& r) {
  return r.sets_are_owners() ? r.owners() : r.read_set();
}

// Calls `fn(node)` for every node the route names — owners, write set and acking
// set, in every group (a node may come more than once).
template <typename Fn>
void ForEachRouteNode(const v1::ShardRoute& r, Fn&& fn) {
  for (const GroupSets* sets : {&r.owners(), &WriteSet(r), &AckingSet(r)}) {
    for (const auto& group : *sets) {
      for (const auto& n : group.nodes()) fn(n);
    }
  }
}

}  // namespace miroir

#endif  // MIROIR_COMMON_ROUTE_SETS_H_
