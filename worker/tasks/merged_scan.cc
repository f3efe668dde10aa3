#include "worker/tasks/merged_scan.h"

#include <algorithm>
#include <map>

namespace miroir {

const StoredDoc& MergedEntry::Newest() const {
  const StoredDoc* best = nullptr;
  for (const auto& c : copies) {
    if (c && (best == nullptr || c->version > best->version)) best = &*c;
  }
  return *best;
}

MergedScan::MergedScan(std::vector<Replica> replicas, ShardKey shard, uint64_t epoch,
                       std::string cursor, uint32_t page_size)
    : replicas_(std::move(replicas)),
      shard_(std::move(shard)),
      epoch_(epoch),
      cursor_(std::move(cursor)),
      page_size_(page_size == 0 ? 1000 : page_size),
      sources_(replicas_.size()) {
  for (auto& s : sources_) s.after = cursor_;
}

bool MergedScan::done() const {
  for (const auto& s : sources_) {
    if (!s.exhausted || !s.buf.empty()) return false;
  }
  return true;
}

absl::StatusOr<std::vector<MergedEntry>> MergedScan::Next() {
  // Refill empty buffers.
  for (size_t i = 0; i < sources_.size(); ++i) {
    Source& s = sources_[i];
    if (!s.buf.empty() || s.exhausted) continue;
    auto page = replicas_[i].store->Scan(shard_, epoch_, s.after, page_size_);
    if (!page.ok()) {
      return absl::Status(page.status().code(),
                          replicas_[i].node + ": " + std::string(page.status().message()));
    }
    if (page->size() < page_size_) s.exhausted = true;
    if (!page->empty()) s.after = page->back().pk;
    for (auto& d : *page) s.buf.push_back(std::move(d));
  }
  // Every pk up to the smallest last-buffered pk of a non-exhausted source is complete.
  std::optional<std::string> bound;
  for (const auto& s : sources_) {
    if (s.exhausted) continue;
    const std::string& last = s.buf.back().pk;  // non-exhausted implies a full page
    if (!bound || last < *bound) bound = last;
  }
  std::map<std::string, MergedEntry> merged;
  for (size_t i = 0; i < sources_.size(); ++i) {
    Source& s = sources_[i];
    while (!s.buf.empty() && (!bound || s.buf.front().pk <= *bound)) {
      StoredDoc d = std::move(s.buf.front());
      s.buf.pop_front();
      MergedEntry& e = merged[d.pk];
      if (e.copies.empty()) {
        e.pk = d.pk;
        e.copies.resize(sources_.size());
      }
      e.copies[i] = std::move(d);
    }
  }
  std::vector<MergedEntry> out;
  out.reserve(merged.size());
  for (auto& [pk, e] : merged) out.push_back(std::move(e));
  if (!out.empty()) cursor_ = out.back().pk;
  return out;
}

}  // namespace miroir
