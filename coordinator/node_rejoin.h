// A failed node's return (DESIGN §6 "Node rejoin", §9a): the sync points kept per
// (node, shard), what a rejoin's prepare copies from the node before wiping it,
// whether a failed node still holds back tombstone purges, and forgetting it.
// Pure functions over a ClusterState snapshot, no I/O; any thread.
#ifndef MIROIR_COORDINATOR_NODE_REJOIN_H_
#define MIROIR_COORDINATOR_NODE_REJOIN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/cluster_state.h"
#include "miroir/v1/coordinator.pb.h"
#include "miroir/v1/types.pb.h"

namespace miroir::coordinator {

// The sync point of `node` in (generation, shard), or null.
const v1::SyncPoint* FindSyncPoint(const v1::Node& node, uint64_t generation, uint32_t shard);

// Records the sync points a finished repairing AE pass gives: each replica's
// position at the pass start (the result's watermarks) becomes that node's sync
// point for the pass's shard. A report-only pass records nothing. Nodes already
// changed in `c` are updated there.
void RecordSyncPoints(const ClusterState& s, const v1::Task& pass, const v1::TaskResult& result,
                      Change* c);

// What a rejoin's prepare of (generation, shard) copies from `node` before the
// wipe: from its sync point when one was taken under the incarnation it had when
// marked failed, else from sequence 0 (every entry) under that incarnation. An
// empty node id (nothing to copy) when the node was forgotten or its incarnation
// at the failure is unknown. The worker copies nothing either when the node's
// incarnation is no longer this one.
v1::Watermark RescueFrom(const v1::Node& node, uint64_t generation, uint32_t shard);

// A failed node that is not forgotten counts as a replica of its shards for the
// tombstone purge rule (c): no pass reaches it, so nothing is purged.
bool HoldsBackPurges(const v1::Node& node);

// `node` as MarkNodeFailed stores it: failed, its incarnation at the failure kept,
// not forgotten.
v1::Node AsFailed(const v1::Node& node);

// The fence MarkNodeFailed leases for one of the failed node's shards, at the
// new epoch (§9a: a worker on an older view can no longer write there). Best
// effort: marked so, and nothing waits for it.
v1::Task NodeFailureFence(const ClusterState& s, Change* change, const v1::GenerationRoute& gen,
                          uint32_t shard, const std::string& node);

// Whether `task` is such a fence (the plan runner drops it once it ran or failed
// for good; every other move-less fence, e.g. a reshard's swap fence, belongs
// to its own runner).
bool IsNodeFailureFence(const v1::Task& task);

// `node` once a rejoin of it finished: its failure bookkeeping cleared.
v1::Node AsRejoined(const v1::Node& node);

// ForgetNode (DESIGN §6): NOT_FOUND unknown id; FAILED_PRECONDITION when the node
// is not marked failed, already forgotten, or a rejoin plan of it is not ended.
// Returns the response, whose node is the one to store (forgotten, sync points
// dropped).
absl::StatusOr<v1::ForgetNodeResponse> ForgetNode(const ClusterState& s, const std::string& id);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_NODE_REJOIN_H_
