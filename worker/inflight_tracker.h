// InflightTracker: the writes a worker has fanned out and not yet heard back,
// each entry with the routing epoch it was routed at and the shards it touches,
// so the session acks epoch E only once no write routed at an older epoch to a
// shard that E changed is still in flight (docs/task-protocol.md, routing_ack).
// The write path enters each client batch once (its write count, no shards) and
// FanOutTolerant each node request (its shards, no count) until that node answers.
// Thread-safe.
#ifndef MIROIR_WORKER_INFLIGHT_TRACKER_H_
#define MIROIR_WORKER_INFLIGHT_TRACKER_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace miroir {

class InflightTracker {
 public:
  // Registers `writes` writes routed at `epoch` to `shards` (ShardKeyName form).
  // Returns the token End takes.
  uint64_t Begin(uint64_t epoch, uint64_t writes, absl::flat_hash_set<std::string> shards);
  void End(uint64_t token);
  // True when no write routed at an epoch below `epoch` is in flight.
  bool NoneBelow(uint64_t epoch) const;
  // True when no write routed at an epoch below `epoch` to one of `shards` is in flight.
  bool NoneBelowTouching(uint64_t epoch, const absl::flat_hash_set<std::string>& shards) const;
  uint64_t Total() const;

 private:
  struct Batch {
    uint64_t epoch = 0;
    uint64_t writes = 0;
    absl::flat_hash_set<std::string> shards;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Batch> batches_ ABSL_GUARDED_BY(mu_);
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

// RAII: Begin on construction, End on destruction.
class InflightScope {
 public:
  InflightScope(InflightTracker* t, uint64_t epoch, uint64_t writes,
                absl::flat_hash_set<std::string> shards)
      : t_(t), token_(t->Begin(epoch, writes, std::move(shards))) {}
  ~InflightScope() { t_->End(token_); }
  InflightScope(const InflightScope&) = delete;
  InflightScope& operator=(const InflightScope&) = delete;

 private:
  InflightTracker* t_;
  uint64_t token_;
};

}  // namespace miroir

#endif  // MIROIR_WORKER_INFLIGHT_TRACKER_H_
