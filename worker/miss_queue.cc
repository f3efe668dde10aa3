#include "worker/miss_queue.h"

#include <algorithm>

namespace miroir {

MissQueue::MissQueue(size_t max_entries) : max_entries_(std::max<size_t>(max_entries, 1)) {}

void MissQueue::Add(const std::string& node, const std::string& index, uint64_t generation,
                    uint32_t shard, uint64_t count) {
  absl::MutexLock l(&mu_);
  AddLocked(node, index, generation, shard, count);
}

void MissQueue::AddLocked(const std::string& node, const std::string& index, uint64_t generation,
                          uint32_t shard, uint64_t count) {
  if (flagged_.count(node)) return;  // the flag covers every shard of it
  Key key{node, index, generation, shard};
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second += count;
    return;
  }
  if (entries_.size() >= max_entries_) {
    FlagLocked(node);
    return;
  }
  entries_.emplace(std::move(key), count);
}

void MissQueue::FlagLocked(const std::string& node) {
  flagged_.insert(node);
  // Entries are ordered by node first: its entries are one range.
  auto first = entries_.lower_bound(Key{node, "", 0, 0});
  auto last = first;
  while (last != entries_.end() && std::get<0>(last->first) == node) ++last;
  entries_.erase(first, last);
}

v1::MissReport MissQueue::Take() {
  v1::MissReport report;
  absl::MutexLock l(&mu_);
  for (const auto& [k, count] : entries_) {
    v1::Miss* m = report.add_misses();
    m->set_node(std::get<0>(k));
    m->set_index(std::get<1>(k));
    m->set_generation(std::get<2>(k));
    m->set_shard(std::get<3>(k));
    m->set_count(count);
  }
  for (const auto& node : flagged_) {
    v1::Miss* m = report.add_misses();
    m->set_node(node);
    m->set_all_shards(true);
  }
  entries_.clear();
  flagged_.clear();
  return report;
}

void MissQueue::Return(const v1::MissReport& report) {
  absl::MutexLock l(&mu_);
  // Flags first: a returned flag folds that node's newer entries too.
  for (const v1::Miss& m : report.misses()) {
    if (m.all_shards()) FlagLocked(m.node());
  }
  for (const v1::Miss& m : report.misses()) {
    if (!m.all_shards()) {
      AddLocked(m.node(), m.index(), m.generation(), m.shard(), std::max<uint64_t>(m.count(), 1));
    }
  }
}

bool MissQueue::empty() const {
  absl::MutexLock l(&mu_);
  return entries_.empty() && flagged_.empty();
}

size_t MissQueue::entries() const {
  absl::MutexLock l(&mu_);
  return entries_.size();
}

size_t MissQueue::flagged_nodes() const {
  absl::MutexLock l(&mu_);
  return flagged_.size();
}

}  // namespace miroir
