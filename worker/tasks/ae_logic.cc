#include "worker/tasks/ae_logic.h"

#include <xxhash.h>

#include <map>
#include <string>
#include <utility>

#include "common/digest.h"

namespace miroir {
namespace {

constexpr uint64_t kAeBucketSeed = 0x4145'6275'636b'6574ULL;  // "AEbucket"

bool SameEntry(const StoredDoc& a, const StoredDoc& b) {
  if (a.version != b.version || a.tombstone != b.tombstone) return false;
  return a.tombstone || a.body == b.body;
}

}  // namespace

uint32_t AeBucket(std::string_view pk, uint32_t buckets) {
  return static_cast<uint32_t>(XXH64(pk.data(), pk.size(), kAeBucketSeed) % buckets);
}

bool IsExpired(const StoredDoc& d, int64_t now_ms) {
  return !d.tombstone && d.expires_at_ms > 0 && d.expires_at_ms <= now_ms;
}

BucketDigests::BucketDigests(uint32_t buckets)
    : xor_(buckets == 0 ? kDefaultAeBuckets : buckets, 0),
      expired_(buckets == 0 ? kDefaultAeBuckets : buckets, 0) {}

void BucketDigests::Add(const StoredDoc& d, int64_t now_ms) {
  const uint32_t b = AeBucket(d.pk, buckets());
  xor_[b] ^= EntryHash(d.pk, d.version.hlc, d.version.writer, d.tombstone, d.body);
  if (IsExpired(d, now_ms)) expired_[b] = 1;
  ++entries_;
}

uint64_t BucketDigests::Root() const {
  return XXH64(xor_.data(), xor_.size() * sizeof(uint64_t), 0);
}

std::vector<uint32_t> DivergentBuckets(const std::vector<BucketDigests>& replicas) {
  std::vector<uint32_t> out;
  if (replicas.empty()) return out;
  const uint32_t n = replicas[0].buckets();
  bool roots_equal = true;
  bool any_expired = false;
  for (const auto& r : replicas) {
    roots_equal = roots_equal && r.Root() == replicas[0].Root();
    for (uint32_t b = 0; b < n && !any_expired; ++b) any_expired = r.has_expired(b);
  }
  if (roots_equal && !any_expired) return out;
  for (uint32_t b = 0; b < n; ++b) {
    bool diverges = false;
    for (const auto& r : replicas) {
      diverges = diverges || r.bucket(b) != replicas[0].bucket(b) || r.has_expired(b);
    }
    if (diverges) out.push_back(b);
  }
  return out;
}

RepairDecision DecideRepair(const std::vector<std::optional<StoredDoc>>& copies, int64_t now_ms) {
  RepairDecision d;
  d.write.assign(copies.size(), false);
  const StoredDoc* top = nullptr;
  for (const auto& c : copies) {
    if (!c) continue;
    // Highest version; at an equal version a tombstone (or an expired document,
    // which reads as deleted) ranks first.
    if (top == nullptr || c->version > top->version ||
        (c->version == top->version && c->tombstone && !top->tombstone)) {
      top = &*c;
    }
  }
  if (top == nullptr) return d;
  StoredDoc truth = *top;
  if (!truth.tombstone) {
    // Documents at the top version: count bodies.
    std::map<std::pair<uint64_t, std::string>, size_t> votes;  // (BodyHash, body) -> replicas
    for (const auto& c : copies) {
      if (c && !c->tombstone && c->version == truth.version) {
        ++votes[{BodyHash(c->body), c->body}];
      }
    }
    if (votes.size() > 1) {
      d.conflict = true;
      d.overwrite_same_version = true;
      const std::pair<uint64_t, std::string>* winner = nullptr;
      for (const auto& [body, n] : votes) {
        if (2 * n > copies.size()) winner = &body;
      }
      if (winner == nullptr) {
        d.unresolved = true;
        winner = &votes.begin()->first;  // lowest BodyHash, then lowest bytes
      }
      for (const auto& c : copies) {
        if (c && !c->tombstone && c->version == truth.version && c->body == winner->second) {
          truth = *c;
          break;
        }
      }
    }
    if (IsExpired(truth, now_ms)) {
      d.expired = true;
      d.overwrite_same_version = true;
      truth.tombstone = true;
      truth.body.clear();
      truth.expires_at_ms = 0;
    }
  }
  for (size_t i = 0; i < copies.size(); ++i) {
    const auto& c = copies[i];
    if (!c || !SameEntry(*c, truth)) {
      d.write[i] = true;
      d.mismatch = true;
      // An equal stored version is only ever overwritten to fix that copy.
      if (c && c->version == truth.version) {
        d.overwrite_same_version = true;
        if (truth.tombstone && IsExpired(*c, now_ms)) d.expired = true;
      }
    }
  }
  d.truth = std::move(truth);
  return d;
}

}  // namespace miroir
