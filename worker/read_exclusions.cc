#include "worker/read_exclusions.h"

namespace miroir {

bool ReadExclusions::Apply(const v1::ReadExclusions& list) {
  absl::MutexLock l(&mu_);
  bool applied = false;
  if (list.run() != run_ || list.version() > version_) {
    listed_.clear();
    for (const auto& e : list.exclusions()) listed_.insert({e.node(), e.generation(), e.shard()});
    version_ = list.version();
    run_ = list.run();
    applied = true;
  }
  if (list.misses_through() > 0) {
    for (auto it = own_.begin(); it != own_.end();) {
      const uint64_t in = it->second;
      if (in != 0 && in <= list.misses_through()) {
        own_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  return applied;
}

void ReadExclusions::AddOwnMiss(const std::string& node, uint64_t generation, uint32_t shard) {
  absl::MutexLock l(&mu_);
  // A new miss after a report that carried the key must be reported (and
  // confirmed) again before the exclusion may end.
  own_[{node, generation, shard}] = 0;
}

void ReadExclusions::ReportSent(uint64_t seq) {
  absl::MutexLock l(&mu_);
  for (auto& [k, reported_in] : own_) {
    if (reported_in == 0) reported_in = seq;
  }
}

bool ReadExclusions::Excluded(const std::string& node, uint64_t generation, uint32_t shard) const {
  absl::MutexLock l(&mu_);
  const Key k{node, generation, shard};
  return listed_.contains(k) || own_.contains(k);
}

uint64_t ReadExclusions::version() const {
  absl::MutexLock l(&mu_);
  return version_;
}

size_t ReadExclusions::listed() const {
  absl::MutexLock l(&mu_);
  return listed_.size();
}

size_t ReadExclusions::own() const {
  absl::MutexLock l(&mu_);
  return own_.size();
}

}  // namespace miroir
