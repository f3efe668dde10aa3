// The pending read exclusions (DESIGN §4 "Reads"): every (node, shard) with a
// pending recovery pass, which reads must skip until the pass has repaired it.
// Derived from the task set alone — whoever schedules, retries or re-issues the
// passes — so the list is right whenever the tasks are. Pure, no I/O, any thread.
#ifndef MIROIR_COORDINATOR_READ_EXCLUSIONS_H_
#define MIROIR_COORDINATOR_READ_EXCLUSIONS_H_

#include <cstdint>
#include <map>
#include <vector>

#include "coordinator/cluster_state.h"
#include "coordinator/recovery_passes.h"
#include "miroir/v1/worker_control.pb.h"

namespace miroir::coordinator {

// One entry per (target, generation, shard) of every recovery pass in `tasks`,
// every target of each
// (whatever its status: pending, leased, failed awaiting a retry), sorted by
// (node, generation, shard), without duplicates.
std::vector<v1::ReadExclusion> PendingReadExclusions(const std::map<uint64_t, TaskRecord>& tasks);

// Whether two lists name the same entries in the same order.
bool SameReadExclusions(const google::protobuf::RepeatedPtrField<v1::ReadExclusion>& a,
                        const std::vector<v1::ReadExclusion>& b);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_READ_EXCLUSIONS_H_
