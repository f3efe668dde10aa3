// MergedScan: pages one shard from several replicas at once in key order, so
// every page holds, per pk, what each replica stores (or nothing). Used by
// backfill (merge by version) and Reconcile/verify (compare replicas).
//
// One thread uses an instance; it calls the stores (no locks held).
#ifndef MIROIR_WORKER_TASKS_MERGED_SCAN_H_
#define MIROIR_WORKER_TASKS_MERGED_SCAN_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/stores/store_adapter.h"

namespace miroir {

struct Replica {
  std::string node;
  std::shared_ptr<StoreAdapter> store;
};

// One pk across replicas: `copies[i]` is replica i's entry, if it has one.
struct MergedEntry {
  std::string pk;
  std::vector<std::optional<StoredDoc>> copies;
  // The copy with the highest version (tombstones included). REQUIRES: one exists.
  const StoredDoc& Newest() const;
};

class MergedScan {
 public:
  // Starts after `cursor` ("" = the beginning).
  MergedScan(std::vector<Replica> replicas, ShardKey shard, uint64_t epoch, std::string cursor,
             uint32_t page_size);

  // The next entries in key order (empty when the shard is exhausted). Every
  // returned pk is complete: no replica can still hold a smaller unseen pk.
  // A replica's read error (unreachable, fenced) is returned as is.
  absl::StatusOr<std::vector<MergedEntry>> Next();
  // Last pk returned (the keyset cursor to checkpoint).
  const std::string& cursor() const { return cursor_; }
  bool done() const;

 private:
  struct Source {
    std::deque<StoredDoc> buf;
    std::string after;
    bool exhausted = false;
  };
  std::vector<Replica> replicas_;
  ShardKey shard_;
  uint64_t epoch_;
  std::string cursor_;
  uint32_t page_size_;
  std::vector<Source> sources_;
};

}  // namespace miroir

#endif  // MIROIR_WORKER_TASKS_MERGED_SCAN_H_
