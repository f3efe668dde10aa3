#include "worker/node_health.h"

#include <algorithm>

namespace miroir {

bool NodeHealth::Suspected(const std::string& node) const {
  if (SuspectedCount() == 0) return false;
  absl::MutexLock l(&mu_);
  auto it = nodes_.find(node);
  return it != nodes_.end() && it->second.suspected;
}

std::vector<std::string> NodeHealth::SuspectedNodes() const {
  std::vector<std::string> out;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [n, s] : nodes_) {
      if (s.suspected) out.push_back(n);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool NodeHealth::AtCap(const std::string& node) const {
  absl::MutexLock l(&mu_);
  auto it = nodes_.find(node);
  return it != nodes_.end() && it->second.suspected &&
         it->second.outstanding >= std::max(0, options_.max_inflight);
}

void NodeHealth::BeginSend(const std::string& node) {
  absl::MutexLock l(&mu_);
  ++nodes_[node].outstanding;
}

void NodeHealth::EndSend(const std::string& node) {
  absl::MutexLock l(&mu_);
  State& s = nodes_[node];
  if (s.outstanding > 0) --s.outstanding;
}

bool NodeHealth::RecordTimeout(const std::string& node, absl::Time now) {
  absl::MutexLock l(&mu_);
  State& s = nodes_[node];
  ++s.timeouts;
  if (s.suspected || s.timeouts < std::max(1, options_.suspect_after)) return false;
  s.suspected = true;
  suspected_count_.fetch_add(1, std::memory_order_release);
  // The first probe waits a probe interval: the node just failed to answer.
  s.last_probe = now;
  counters_.suspicions.fetch_add(1);
  return true;
}

void NodeHealth::RecordAnswer(const std::string& node) {
  absl::MutexLock l(&mu_);
  auto it = nodes_.find(node);
  if (it != nodes_.end() && !it->second.suspected) it->second.timeouts = 0;
}

bool NodeHealth::ProbeDue(const std::string& node, absl::Time now) {
  absl::MutexLock l(&mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return false;
  State& s = it->second;
  if (!s.suspected || s.probing || now - s.last_probe < options_.probe_interval) return false;
  s.probing = true;
  s.last_probe = now;
  return true;
}

bool NodeHealth::ProbeDone(const std::string& node, bool answered_within) {
  absl::MutexLock l(&mu_);
  State& s = nodes_[node];
  s.probing = false;
  if (!answered_within || !s.suspected) return false;
  s.suspected = false;
  suspected_count_.fetch_sub(1, std::memory_order_release);
  s.timeouts = 0;
  counters_.clears.fetch_add(1);
  return true;
}

}  // namespace miroir
