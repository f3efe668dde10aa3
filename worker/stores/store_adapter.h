// StoreAdapter: the narrow interface between the worker and one store node
// (DESIGN §5). Every operation is namespaced by (index, generation, shard) and,
// except the fence itself and stats, checks the shard's fence first: an op whose
// epoch is below the fence is refused with kFenced.
//
// Destructive operations (DeleteShard, PurgeTombstones) are fenced like writes,
// and the node itself checks the fence atomically with every chunk it deletes
// (DESIGN §6, "Every destructive store operation is fenced against stale
// holders"): once another holder raised the shard's fence above the op's epoch,
// not one more entry is deleted, even by a call already under way.
//
// Implementations are thread-safe (they hold a connection pool); callers never
// hold their own locks across a call.
#ifndef MIROIR_WORKER_STORES_STORE_ADAPTER_H_
#define MIROIR_WORKER_STORES_STORE_ADAPTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/version.h"

namespace miroir {

// Epoch for read-only checks (test checker, ctl verify reads): passes every
// fence. Never used for a mutation.
inline constexpr uint64_t kAnyEpoch = ~uint64_t{0};

// Where a shard lives on a node.
struct ShardKey {
  std::string index;
  uint64_t generation = 0;
  uint32_t shard = 0;
};

// A document or tombstone as stored.
struct StoredDoc {
  std::string pk;
  std::string body;  // JSON object text; empty for a tombstone
  Version version;
  bool tombstone = false;
  int64_t expires_at_ms = 0;  // 0 = never
  uint64_t change_seq = 0;    // node-local change sequence of its last apply
  int64_t applied_at_ms = 0;  // node clock when applied (tombstone GC)
};

// One conditional mutation. A copy (backfill, delta, repair) carries the
// source's version; a client write carries the worker's stamp.
struct Mutation {
  std::string pk;
  Version version;
  bool tombstone = false;     // delete_if_newer
  std::string body;           // put only
  int64_t expires_at_ms = 0;  // put only
  // Anti-entropy repair only: also overwrite an entry stored at exactly this
  // version (same-version corruption, an expired document turned into a tombstone
  // at its own version). Never set by the write path or the move copies.
  bool overwrite_same_version = false;
};

enum class ApplyOutcome {
  kApplied,        // written (or the same version was already there: a retry)
  kStoredIsNewer,  // the node holds a newer version: `stored` says which
  kFenced,         // the op's epoch is below the shard's fence: `fence` says which
};

struct ApplyResult {
  ApplyOutcome outcome = ApplyOutcome::kApplied;
  Version stored;           // kStoredIsNewer
  uint64_t fence = 0;       // kFenced
  uint64_t change_seq = 0;  // kApplied: the seq stamped
};

// Change-sequence position of a shard on a node, with the node's incarnation.
struct SeqPosition {
  std::string incarnation;
  uint64_t seq = 0;
};

struct ShardStatsResult {
  uint64_t documents = 0;
  uint64_t bytes = 0;
  uint64_t tombstones = 0;
};

// Memory of a whole node, for the coordinator's capacity gate.
struct NodeCapacity {
  uint64_t capacity_bytes = 0;  // the store's configured limit; 0 = unknown / unlimited
  uint64_t used_bytes = 0;      // what the store reports using now
};

// Mutations of one shard, for ApplyMany.
struct ShardMutations {
  ShardKey shard;
  std::vector<Mutation> muts;
};

class StoreAdapter {
 public:
  virtual ~StoreAdapter() = default;

  // Node-wide incarnation id; created on first use of an empty node.
  virtual absl::StatusOr<std::string> Incarnation() = 0;

  // Applies `muts` in order, pipelined; one result per mutation. A non-OK
  // status means the node could not be reached (no result is known).
  virtual absl::StatusOr<std::vector<ApplyResult>> Apply(const ShardKey& shard, uint64_t epoch,
                                                         const std::vector<Mutation>& muts) = 0;

  // Apply over several shards of the node in one pipelined round trip; one result
  // vector per batch. The default calls Apply per batch.
  virtual absl::StatusOr<std::vector<std::vector<ApplyResult>>> ApplyMany(
      uint64_t epoch, const std::vector<ShardMutations>& batches) {
    std::vector<std::vector<ApplyResult>> out;
    for (const auto& b : batches) {
      auto r = Apply(b.shard, epoch, b.muts);
      if (!r.ok()) return r.status();
      out.push_back(*std::move(r));
    }
    return out;
  }

  // Reads one key (document or tombstone). NOT_FOUND when absent; FAILED_PRECONDITION
  // ("fenced") when epoch < fence.
  virtual absl::StatusOr<StoredDoc> Get(const ShardKey& shard, uint64_t epoch,
                                        const std::string& pk) = 0;

  // Keyset page: up to `limit` entries with pk > after_pk in byte order,
  // tombstones included. FAILED_PRECONDITION when fenced.
  virtual absl::StatusOr<std::vector<StoredDoc>> Scan(const ShardKey& shard, uint64_t epoch,
                                                      const std::string& after_pk,
                                                      uint32_t limit) = 0;

  // Entries whose change seq is in (after_seq, upto_seq] (upto_seq 0 = no bound),
  // in seq order, at most `limit`; one range read. The position returned says the
  // incarnation, so a caller whose W came from another incarnation starts over.
  virtual absl::StatusOr<std::vector<StoredDoc>> ChangedSince(const ShardKey& shard, uint64_t epoch,
                                                              uint64_t after_seq, uint64_t upto_seq,
                                                              uint32_t limit) = 0;

  // ChangedSince over several shards of the node in one pipelined round trip,
  // each range with the same `limit`; one page per range, in order. The default
  // calls ChangedSince per range.
  struct ChangedRange {
    ShardKey shard;
    uint64_t after_seq = 0;
    uint64_t upto_seq = 0;
  };
  virtual absl::StatusOr<std::vector<std::vector<StoredDoc>>> ChangedSinceMany(
      uint64_t epoch, const std::vector<ChangedRange>& ranges, uint32_t limit) {
    std::vector<std::vector<StoredDoc>> out;
    for (const auto& r : ranges) {
      auto page = ChangedSince(r.shard, epoch, r.after_seq, r.upto_seq, limit);
      if (!page.ok()) return page.status();
      out.push_back(*std::move(page));
    }
    return out;
  }

  // Current change sequence of the shard (W).
  virtual absl::StatusOr<SeqPosition> CurrentSeq(const ShardKey& shard) = 0;

  // Raises the fence to `epoch` (never lowers it) and returns the change
  // sequence at that instant, atomically (F).
  virtual absl::StatusOr<SeqPosition> SetFence(const ShardKey& shard, uint64_t epoch) = 0;
  virtual absl::StatusOr<uint64_t> GetFence(const ShardKey& shard) = 0;
  // SetFence over several shards of the node in one pipelined round trip; one
  // position per shard, in order. The default calls SetFence per shard.
  virtual absl::StatusOr<std::vector<SeqPosition>> SetFenceMany(const std::vector<ShardKey>& shards,
                                                                uint64_t epoch) {
    std::vector<SeqPosition> out;
    for (const auto& s : shards) {
      auto f = SetFence(s, epoch);
      if (!f.ok()) return f.status();
      out.push_back(*std::move(f));
    }
    return out;
  }

  // Deletes every document and tombstone of the shard (fence and seq stay), in
  // chunks; each chunk re-checks the fence on the node. FAILED_PRECONDITION
  // ("fenced") when epoch < fence, also when the fence rose between chunks (what
  // was deleted before stays deleted); CANCELLED when `cancelled` (may be empty)
  // says so between chunks.
  virtual absl::Status DeleteShard(const ShardKey& shard, uint64_t epoch,
                                   const std::function<bool()>& cancelled) = 0;

  virtual absl::StatusOr<ShardStatsResult> Stats(const ShardKey& shard) = 0;
  // The node's memory limit and use (UNAVAILABLE when unreachable).
  virtual absl::StatusOr<NodeCapacity> Capacity() = 0;

  // The node's durability settings by name (redis: appendonly, appendfsync,
  // maxmemory-policy, as CONFIG GET returns them), for `miroir-ctl check`.
  // UNAVAILABLE when unreachable; UNIMPLEMENTED for a store without such settings.
  virtual absl::StatusOr<std::map<std::string, std::string>> DurabilityConfig() {
    return absl::UnimplementedError("store exposes no durability settings");
  }

  // Purges tombstones applied before `applied_before_ms` (node clock), in keyset
  // pages; each page re-checks the fence on the node. Returns the count.
  // FAILED_PRECONDITION ("fenced") when epoch < fence, also when the fence rose
  // between pages; CANCELLED when `cancelled` (may be empty) says so between pages.
  virtual absl::StatusOr<uint64_t> PurgeTombstones(const ShardKey& shard, uint64_t epoch,
                                                   int64_t applied_before_ms,
                                                   const std::function<bool()>& cancelled) = 0;
};

// Connection settings shared by adapters.
struct StoreOptions {
  int connect_timeout_ms = 1000;
  int op_timeout_ms = 2000;
  int pool_size = 16;
  // DESIGN §13 store credentials: every new connection authenticates as this
  // ACL user (`AUTH username password`; `AUTH password` for the default user when
  // username is empty). password holds the secret read from store.password_file;
  // it is never logged or put in an error.
  std::string username;
  std::string password;
  // hiredis 0.14 has no TLS: a node address that is not loopback (a local TLS
  // tunnel's endpoint is) is refused unless this is set (store.insecure).
  bool insecure = false;
};

// Creates the adapter for `store` ("redis") at `address` (HOST:PORT).
// INVALID_ARGUMENT for an unknown store type or a malformed address;
// FAILED_PRECONDITION for a non-loopback address without options.insecure.
absl::StatusOr<std::unique_ptr<StoreAdapter>> MakeStoreAdapter(const std::string& store,
                                                               const std::string& address,
                                                               const StoreOptions& options);

}  // namespace miroir

#endif  // MIROIR_WORKER_STORES_STORE_ADAPTER_H_
