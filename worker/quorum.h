// The ack rule of the write path (DESIGN §4), as a pure function: a group
// succeeds for a shard when floor(rf/2)+1 members of that group's acking set
// applied the write; the write succeeds when at least one group succeeded; it is
// degraded when any group with acking members did not; it fails (no quorum) when
// none succeeded. No I/O; safe from any thread.
#ifndef MIROIR_WORKER_QUORUM_H_
#define MIROIR_WORKER_QUORUM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "miroir/v1/types.pb.h"

namespace miroir {

// floor(rf/2)+1; rf 0 counts as 1.
uint32_t GroupQuorum(uint32_t rf);

struct QuorumResult {
  bool ok = false;                           // >= 1 group reached quorum
  std::vector<std::string> ok_groups;        // groups that reached quorum
  std::vector<std::string> degraded_groups;  // groups with acking members that did not
};

// `acking_set`: members per group (a restore's replacement is listed in place of
// the failed node by the coordinator); `applied`: nodes that applied the write.
// Groups with an empty acking list take no part.
QuorumResult EvaluateQuorum(const google::protobuf::RepeatedPtrField<v1::GroupOwners>& acking_set,
                            uint32_t rf, const absl::flat_hash_set<std::string>& applied);

}  // namespace miroir

#endif  // MIROIR_WORKER_QUORUM_H_
