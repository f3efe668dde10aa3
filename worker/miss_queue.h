// MissQueue: the misses this worker has not yet reported to a coordinator
// (DESIGN §4, §9a). The write path adds a (node, index, generation, shard) entry
// for every target that missed a write; the session takes them out as one
// report, and puts them back when no coordinator answered, so misses wait out a
// control-plane outage instead of being dropped.
//
// Bounded: at most `max_entries` entries. Past that the queue degrades instead of
// dropping: the node of the miss that does not fit has all its entries folded
// into one per-node flag ("missed writes on some of its shards": the coordinator
// repairs every shard whose write set holds it). Flags are one per node, so the
// memory is at most max_entries entries plus one flag per node, and no node that
// missed a write is ever lost.
//
// Thread-safe.
#ifndef MIROIR_WORKER_MISS_QUEUE_H_
#define MIROIR_WORKER_MISS_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "miroir/v1/worker_control.pb.h"

namespace miroir {

class MissQueue {
 public:
  static constexpr size_t kDefaultMaxEntries = 10000;
  // REQUIRES: max_entries > 0.
  explicit MissQueue(size_t max_entries = kDefaultMaxEntries);

  // Records `count` missed writes of `node` on (index, generation, shard).
  void Add(const std::string& node, const std::string& index, uint64_t generation, uint32_t shard,
           uint64_t count = 1);
  // Moves everything queued into a report (entries, then one `all_shards` miss
  // per flagged node); the queue is empty after. No misses when none queued.
  v1::MissReport Take();
  // Puts back the misses of a report that no coordinator acknowledged, merged
  // with what was added since (under the same bound).
  void Return(const v1::MissReport& report);

  bool empty() const;
  size_t entries() const;        // (node, shard) entries queued
  size_t flagged_nodes() const;  // nodes degraded to a flag

 private:
  using Key = std::tuple<std::string, std::string, uint64_t, uint32_t>;
  void AddLocked(const std::string& node, const std::string& index, uint64_t generation,
                 uint32_t shard, uint64_t count) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlagLocked(const std::string& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_entries_;
  mutable absl::Mutex mu_;
  std::map<Key, uint64_t> entries_ ABSL_GUARDED_BY(mu_);  // -> writes missed
  std::set<std::string> flagged_ ABSL_GUARDED_BY(mu_);
};

}  // namespace miroir

#endif  // MIROIR_WORKER_MISS_QUEUE_H_
