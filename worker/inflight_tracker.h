// InflightTracker: counts writes in flight per routing epoch, so the session
// acks epoch E only once no write routed at an older epoch is still in flight
// (docs/task-protocol.md, routing_ack). Thread-safe.
#ifndef MIROIR_WORKER_INFLIGHT_TRACKER_H_
#define MIROIR_WORKER_INFLIGHT_TRACKER_H_

#include <cstdint>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace miroir {

class InflightTracker {
 public:
  void Begin(uint64_t epoch, uint64_t writes);
  void End(uint64_t epoch, uint64_t writes);
  // True when no write routed at an epoch below `epoch` is in flight.
  bool NoneBelow(uint64_t epoch) const;
  uint64_t Total() const;

 private:
  mutable absl::Mutex mu_;
  std::map<uint64_t, uint64_t> by_epoch_ ABSL_GUARDED_BY(mu_);
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

// RAII: Begin on construction, End on destruction.
class InflightScope {
 public:
  InflightScope(InflightTracker* t, uint64_t epoch, uint64_t writes)
      : t_(t), epoch_(epoch), writes_(writes) {
    t_->Begin(epoch_, writes_);
  }
  ~InflightScope() { t_->End(epoch_, writes_); }
  InflightScope(const InflightScope&) = delete;
  InflightScope& operator=(const InflightScope&) = delete;

 private:
  InflightTracker* t_;
  uint64_t epoch_;
  uint64_t writes_;
};

}  // namespace miroir

#endif  // MIROIR_WORKER_INFLIGHT_TRACKER_H_
