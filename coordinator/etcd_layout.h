// EtcdLayout: where each piece of the coordinator's state lives in etcd, and the
// size checks that keep every commit inside one etcd transaction (DESIGN §9).
// Pure: builds keys and bucket values, never talks to etcd.
//
// Under PREFIX:
//   PREFIX/leader                 the leader's address, under its lease; its
//                                 create revision is the leader's term
//   PREFIX/epoch                  the routing epoch, decimal
//   PREFIX/obj/KIND/BBB           one bucket (deflated): the objects of KIND whose id
//                                 hashes to BBB (v1::EtcdBucket)
//   PREFIX/ev/SSSSSSSSSSSSSSSSSSSS one commit's events (v1::EtcdEventBatch)
//   PREFIX/audit/SSSSSSSSSSSSSSSSSSSS one commit's audit records (v1::EtcdEventBatch,
//                                 plan_id 0), same sequence as its events
//   PREFIX/members/ADDRESS        a live coordinator (v1::CoordinatorMember), under
//                                 its own etcd lease
// Every kind has a fixed number of buckets and all of them together are at most
// kMaxBucketKeys, so even a commit that touches every object is one
// transaction of at most kMaxBucketKeys + 3 puts and as many compares: inside
// etcd's default --max-txn-ops (128). What bounds a commit is its size in bytes
// (--max-request-bytes); a larger one is refused before anything is written.
//
// Thread-compatible: a value type.
#ifndef MIROIR_COORDINATOR_ETCD_LAYOUT_H_
#define MIROIR_COORDINATOR_ETCD_LAYOUT_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace miroir::coordinator {

// etcd's defaults this layout is built for.
inline constexpr int kEtcdMaxTxnOps = 128;
inline constexpr int64_t kEtcdMaxRequestBytes = 1572864;  // 1.5 MiB
// Bucket keys of every kind together; the rest of kEtcdMaxTxnOps is the
// epoch, the event batch and headroom.
inline constexpr int kMaxBucketKeys = 100;
// Room left in a request for the compares, keys and framing around the values.
inline constexpr int64_t kEtcdRequestOverheadBytes = 16 * 1024;

class EtcdLayout {
 public:
  // REQUIRES: prefix starts with '/' and does not end with one.
  explicit EtcdLayout(std::string prefix) : prefix_(std::move(prefix)) {}

  const std::string& prefix() const { return prefix_; }
  std::string LeaderKey() const { return prefix_ + "/leader"; }
  std::string EpochKey() const { return prefix_ + "/epoch"; }
  std::string ObjectsPrefix() const { return prefix_ + "/obj/"; }
  std::string EventsPrefix() const { return prefix_ + "/ev/"; }
  std::string AuditPrefix() const { return prefix_ + "/audit/"; }
  std::string MembersPrefix() const { return prefix_ + "/members/"; }
  // The key of the bucket holding (kind, id).
  std::string BucketKey(const std::string& kind, const std::string& id) const;
  // The key of the event batch with sequence number `seq` (keys sort by seq).
  std::string EventKey(uint64_t seq) const;
  // The key of the audit batch with sequence number `seq`.
  std::string AuditKey(uint64_t seq) const;
  // The sequence number in an event (or audit) key; INVALID_ARGUMENT if it is not one.
  absl::StatusOr<uint64_t> EventSeq(const std::string& key) const;
  // The kind a bucket key belongs to; INVALID_ARGUMENT if it is not one.
  absl::StatusOr<std::string> BucketKind(const std::string& key) const;

  // Buckets of a kind: the kinds that grow with the index (routes, moves,
  // tasks, anti-entropy passes) get more.
  static int BucketsOf(const std::string& kind);

  // The end of the key range that starts with `p` (etcd's range_end).
  static std::string RangeEnd(const std::string& p);

 private:
  std::string prefix_;
};

// One bucket in memory: id -> value.
using BucketObjects = std::map<std::string, std::string>;
std::string EncodeBucket(const BucketObjects& objects);
absl::StatusOr<BucketObjects> DecodeBucket(const std::string& bytes);

// FAILED_PRECONDITION naming the limit when a transaction of `ops` operations
// and about `bytes` bytes does not fit etcd's defaults.
absl::Status CheckTxnFits(int ops, int64_t bytes);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_ETCD_LAYOUT_H_
