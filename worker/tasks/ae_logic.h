// Pure decisions of an anti-entropy pass (DESIGN §8, docs/anti-entropy.md): the
// bucket of a key, bucketed digests of one replica, which buckets diverge, and
// the per-key repair decision. No I/O; each object is used by one thread.
#ifndef MIROIR_WORKER_TASKS_AE_LOGIC_H_
#define MIROIR_WORKER_TASKS_AE_LOGIC_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "worker/stores/store_adapter.h"

namespace miroir {

inline constexpr uint32_t kDefaultAeBuckets = 256;

// Bucket of `pk` among `buckets` (> 0). Seeded differently from shard_for_key, so
// the keys of one shard spread over every bucket whatever S and B are.
uint32_t AeBucket(std::string_view pk, uint32_t buckets);

// True when `d` is a live document whose expires_at_ms is at or before now_ms.
bool IsExpired(const StoredDoc& d, int64_t now_ms);

// Bucketed digests of one shard on one replica: per bucket the XOR of
// EntryHash(pk, version, hash(body)), tombstones included, plus whether the bucket
// holds an expired live document (which must be turned into a tombstone even when
// every replica agrees).
class BucketDigests {
 public:
  explicit BucketDigests(uint32_t buckets);
  void Add(const StoredDoc& d, int64_t now_ms);
  uint32_t buckets() const { return static_cast<uint32_t>(xor_.size()); }
  uint64_t bucket(uint32_t b) const { return xor_[b]; }
  bool has_expired(uint32_t b) const { return expired_[b]; }
  uint64_t entries() const { return entries_; }
  // Root: a hash over every bucket's value; equal roots = equal shards.
  uint64_t Root() const;

 private:
  std::vector<uint64_t> xor_;
  std::vector<uint8_t> expired_;
  uint64_t entries_ = 0;
};

// Buckets to enumerate: those where any replica's digest differs from another's,
// or where any replica holds an expired document. REQUIRES: same bucket counts.
// Empty when every root is equal and nothing expired.
std::vector<uint32_t> DivergentBuckets(const std::vector<BucketDigests>& replicas);

// What one key needs.
struct RepairDecision {
  // The entry every replica must hold (a tombstone for an expired document, at the
  // document's own version). Empty when no replica holds the key.
  std::optional<StoredDoc> truth;
  // Per replica: it must be written (absent, older, or different at the same version).
  std::vector<bool> write;
  bool mismatch = false;    // some replica differs from the truth
  bool conflict = false;    // same top version with different bodies (corruption)
  bool unresolved = false;  // conflict without a majority: converged by the rule below
  bool expired = false;     // the truth is an expired document turned into a tombstone
  // The repair must overwrite an equal stored version (conflict or expiry).
  bool overwrite_same_version = false;
};

// Decides one key across replicas (`copies[i]` = replica i's entry, if any):
//  - the highest version wins; a tombstone beats an older put;
//  - at the top version a tombstone beats a document (an expired document is
//    treated as one);
//  - documents at the top version with different bodies: the body held by more
//    than half of all replicas wins; else the one with the lowest BodyHash (then
//    lowest bytes) wins and the key is reported unresolved;
//  - a winning document past its expires_at_ms becomes a tombstone at its version.
RepairDecision DecideRepair(const std::vector<std::optional<StoredDoc>>& copies, int64_t now_ms);

}  // namespace miroir

#endif  // MIROIR_WORKER_TASKS_AE_LOGIC_H_
