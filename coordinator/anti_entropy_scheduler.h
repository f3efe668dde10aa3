// Anti-entropy scheduling (DESIGN §5, §8; docs/anti-entropy.md): which shards a
// run passes over next, whether a shard may be passed now, the tombstone-GC bound
// a pass carries, the AE_PASS task for a shard, and folding a finished pass into
// the run. Pure functions over a ClusterState snapshot, no I/O; any thread.
#ifndef MIROIR_COORDINATOR_ANTI_ENTROPY_SCHEDULER_H_
#define MIROIR_COORDINATOR_ANTI_ENTROPY_SCHEDULER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "coordinator/cluster_state.h"
#include "coordinator/config.h"
#include "miroir/v1/anti_entropy.pb.h"

namespace miroir::coordinator {

// One shard of one generation.
struct AeShard {
  std::string index;
  uint64_t generation = 0;
  uint32_t shards = 0;  // S of the generation
  uint32_t shard = 0;
};

// "index/generation/shard", the key of ClusterState::ae_passes.
std::string AePassKey(const std::string& index, uint64_t generation, uint32_t shard);

// Shards in the run's scope (the live generation of the scoped index, or of every
// index in name order; the shard range when given). The count is the run's total.
std::vector<AeShard> RunScope(const ClusterState& s, const v1::AntiEntropyRun& run);

// Up to `n` shards to issue next, advancing `run`'s cursor and `issued`. A
// scheduled run starts at its cursor and wraps once past the end; an operator's
// run goes from the first shard to the last. Returns fewer when the run has
// issued `total`.
std::vector<AeShard> NextShards(const ClusterState& s, v1::AntiEntropyRun* run, size_t n);

// Why `shard` must not be passed now, or "" when it may: a move on it has not
// ended, or its index has a reshard active or in retention (DESIGN §5: the
// tombstone GC must never run there; the pass is retried in a later round).
std::string BusyReason(const ClusterState& s, const AeShard& shard);

// The replicas a pass reads: every owner of the shard in every group that is not
// marked failed. `all_reached` is false when some owner is failed and not
// forgotten (it holds back tombstone purges, node_rejoin.h).
std::vector<std::string> PassReplicas(const ClusterState& s, const AeShard& shard,
                                      bool* all_reached);

// Purge bound of a pass (DESIGN §5): now − tombstone_grace − max_clock_drift for a
// repairing pass over every replica; 0 (no GC) for a report-only pass or when a
// replica is missing.
int64_t PurgeBound(int64_t now_ms, const AntiEntropyConfig& cfg, absl::Duration max_clock_drift,
                   bool repair, bool all_replicas);

// The AE_PASS task for `shard` (id, epoch and lease fields left to the caller).
v1::Task MakePassTask(const ClusterState& s, const AeShard& shard, const v1::AntiEntropyRun& run,
                      const AntiEntropyConfig& cfg, absl::Duration max_clock_drift, int64_t now_ms);

// The record of a finished (or failed, `error` set) pass, and its counts added to `run`.
v1::ShardPass FoldPass(const v1::Task& task, const v1::TaskResult& result, const std::string& error,
                       int64_t now_ms, v1::AntiEntropyRun* run);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_ANTI_ENTROPY_SCHEDULER_H_
