// RedisStore: the reference StoreAdapter over hiredis (DESIGN §5). Every mutation
// and read is one Lua script (EVALSHA) that checks the shard's fence first, so
// conditional writes, fences and change sequences are atomic on the node. The key
// layout is documented in docs/stores.md.
//
// Thread-safe: any thread may call any method; connections come from a pool.
#ifndef MIROIR_WORKER_STORES_REDIS_STORE_H_
#define MIROIR_WORKER_STORES_REDIS_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "worker/stores/redis_connection.h"
#include "worker/stores/store_adapter.h"

namespace miroir {

class RedisStore : public StoreAdapter {
 public:
  // `address` is HOST:PORT. INVALID_ARGUMENT when it does not parse.
  static absl::StatusOr<std::unique_ptr<RedisStore>> Create(const std::string& address,
                                                            const StoreOptions& options);

  // Key prefix of a shard: "mi:{index}:{generation}:{shard}:".
  static std::string ShardPrefix(const ShardKey& shard);
  // Node-wide key holding the incarnation id.
  static constexpr const char* kIncarnationKey = "mi:incarnation";

  absl::StatusOr<std::string> Incarnation() override;
  absl::StatusOr<std::vector<ApplyResult>> Apply(const ShardKey& shard, uint64_t epoch,
                                                 const std::vector<Mutation>& muts) override;
  absl::StatusOr<std::vector<std::vector<ApplyResult>>> ApplyMany(
      uint64_t epoch, const std::vector<ShardMutations>& batches) override;
  absl::StatusOr<StoredDoc> Get(const ShardKey& shard, uint64_t epoch,
                                const std::string& pk) override;
  absl::StatusOr<std::vector<StoredDoc>> Scan(const ShardKey& shard, uint64_t epoch,
                                              const std::string& after_pk, uint32_t limit) override;
  absl::StatusOr<std::vector<StoredDoc>> ChangedSince(const ShardKey& shard, uint64_t epoch,
                                                      uint64_t after_seq, uint64_t upto_seq,
                                                      uint32_t limit) override;
  absl::StatusOr<SeqPosition> CurrentSeq(const ShardKey& shard) override;
  absl::StatusOr<SeqPosition> SetFence(const ShardKey& shard, uint64_t epoch) override;
  absl::StatusOr<std::vector<SeqPosition>> SetFenceMany(const std::vector<ShardKey>& shards,
                                                        uint64_t epoch) override;
  absl::StatusOr<std::vector<std::vector<StoredDoc>>> ChangedSinceMany(
      uint64_t epoch, const std::vector<ChangedRange>& ranges, uint32_t limit) override;
  absl::StatusOr<uint64_t> GetFence(const ShardKey& shard) override;
  absl::Status DeleteShard(const ShardKey& shard, uint64_t epoch,
                           const std::function<bool()>& cancelled) override;
  absl::StatusOr<ShardStatsResult> Stats(const ShardKey& shard) override;
  // `maxmemory` (0 when unset: unknown) and `used_memory` from INFO memory.
  absl::StatusOr<NodeCapacity> Capacity() override;
  // CONFIG GET appendonly, appendfsync, maxmemory-policy (one round trip).
  absl::StatusOr<std::map<std::string, std::string>> DurabilityConfig() override;
  absl::StatusOr<uint64_t> PurgeTombstones(const ShardKey& shard, uint64_t epoch,
                                           int64_t applied_before_ms,
                                           const std::function<bool()>& cancelled) override;

 private:
  explicit RedisStore(std::unique_ptr<RedisConnectionPool> pool, std::string address)
      : pool_(std::move(pool)), address_(std::move(address)) {}

  absl::StatusOr<std::vector<StoredDoc>> ReadDocs(int script, std::vector<std::string> args);
  // A document-list reply of the read scripts (or the fenced answer).
  absl::StatusOr<std::vector<StoredDoc>> ParseDocs(const redisReply* r) const;

  std::unique_ptr<RedisConnectionPool> pool_;
  const std::string address_;
};

}  // namespace miroir

#endif  // MIROIR_WORKER_STORES_REDIS_STORE_H_
