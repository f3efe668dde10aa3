#include "worker/inflight_tracker.h"

namespace miroir {

void InflightTracker::Begin(uint64_t epoch, uint64_t writes) {
  absl::MutexLock l(&mu_);
  by_epoch_[epoch] += writes;
  total_ += writes;
}

void InflightTracker::End(uint64_t epoch, uint64_t writes) {
  absl::MutexLock l(&mu_);
  auto it = by_epoch_.find(epoch);
  if (it == by_epoch_.end()) return;
  it->second -= std::min(it->second, writes);
  total_ -= std::min(total_, writes);
  if (it->second == 0) by_epoch_.erase(it);
}

bool InflightTracker::NoneBelow(uint64_t epoch) const {
  absl::MutexLock l(&mu_);
  return by_epoch_.empty() || by_epoch_.begin()->first >= epoch;
}

uint64_t InflightTracker::Total() const {
  absl::MutexLock l(&mu_);
  return total_;
}

}  // namespace miroir
