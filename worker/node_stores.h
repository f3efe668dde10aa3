// NodeStores: one StoreAdapter per store node, created on first use from the
// node's address in the current view and replaced when the address changes.
//
// Thread-safe; the lock is never held across a store call.
#ifndef MIROIR_WORKER_NODE_STORES_H_
#define MIROIR_WORKER_NODE_STORES_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "worker/router.h"
#include "worker/stores/store_adapter.h"

namespace miroir {

class NodeStores {
 public:
  explicit NodeStores(StoreOptions options) : options_(options) {}

  // The adapter of node `id` as named in `snap`. NOT_FOUND when the view does
  // not name it.
  absl::StatusOr<std::shared_ptr<StoreAdapter>> Get(const RoutingSnapshot& snap,
                                                    const std::string& id);
  // The adapter for an explicit address (tasks, tests).
  absl::StatusOr<std::shared_ptr<StoreAdapter>> ForAddress(const std::string& id,
                                                           const std::string& store,
                                                           const std::string& address);
  const StoreOptions& options() const { return options_; }

 private:
  struct Entry {
    std::string address;
    std::shared_ptr<StoreAdapter> adapter;
  };
  const StoreOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> by_node_ ABSL_GUARDED_BY(mu_);
};

}  // namespace miroir

#endif  // MIROIR_WORKER_NODE_STORES_H_
