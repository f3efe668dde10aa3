// Shard digests (DESIGN §6, §8): an order-independent digest of one shard on one
// node over (pk, version, hash(body)), tombstones included, so replicas compare
// with one value and scans in any order or page size give the same result. The
// coordinator and miroir-ctl show it; the worker computes it.
//
// Pure; a ShardDigest is used by one thread at a time.
#ifndef MIROIR_COMMON_DIGEST_H_
#define MIROIR_COMMON_DIGEST_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace miroir {

// XXH64 of the body (seed 0).
uint64_t BodyHash(std::string_view body);

// Hash of one entry: XXH64 over pk, 0x00, version hlc (le64), writer (le64),
// then 'T' for a tombstone or 'D' + le64(BodyHash(body)).
uint64_t EntryHash(std::string_view pk, uint64_t hlc, uint64_t writer, bool tombstone,
                   std::string_view body);

class ShardDigest {
 public:
  void Add(std::string_view pk, uint64_t hlc, uint64_t writer, bool tombstone,
           std::string_view body);
  uint64_t documents() const { return documents_; }
  uint64_t tombstones() const { return tombstones_; }
  // XOR of EntryHash over the entries, mixed with the counts; 16 hex digits.
  // An empty shard is "0000000000000000".
  std::string Hex() const;
  uint64_t value() const;

 private:
  uint64_t xor_ = 0;
  uint64_t documents_ = 0;
  uint64_t tombstones_ = 0;
};

}  // namespace miroir

#endif  // MIROIR_COMMON_DIGEST_H_
