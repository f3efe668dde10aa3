#include "worker/inflight_tracker.h"

#include <utility>

namespace miroir {

uint64_t InflightTracker::Begin(uint64_t epoch, uint64_t writes,
                                absl::flat_hash_set<std::string> shards) {
  absl::MutexLock l(&mu_);
  const uint64_t token = next_token_++;
  batches_[token] = Batch{epoch, writes, std::move(shards)};
  total_ += writes;
  return token;
}

void InflightTracker::End(uint64_t token) {
  absl::MutexLock l(&mu_);
  auto it = batches_.find(token);
  if (it == batches_.end()) return;
  total_ -= std::min(total_, it->second.writes);
  batches_.erase(it);
}

bool InflightTracker::NoneBelow(uint64_t epoch) const {
  absl::MutexLock l(&mu_);
  for (const auto& [token, b] : batches_) {
    if (b.epoch < epoch) return false;
  }
  return true;
}

bool InflightTracker::NoneBelowTouching(uint64_t epoch,
                                        const absl::flat_hash_set<std::string>& shards) const {
  absl::MutexLock l(&mu_);
  for (const auto& [token, b] : batches_) {
    if (b.epoch >= epoch) continue;
    for (const auto& s : b.shards) {
      if (shards.contains(s)) return false;
    }
  }
  return true;
}

uint64_t InflightTracker::Total() const {
  absl::MutexLock l(&mu_);
  return total_;
}

}  // namespace miroir
