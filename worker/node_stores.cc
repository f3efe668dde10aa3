#include "worker/node_stores.h"

#include "absl/strings/str_cat.h"

namespace miroir {

absl::StatusOr<std::shared_ptr<StoreAdapter>> NodeStores::Get(const RoutingSnapshot& snap,
                                                              const std::string& id) {
  const v1::Node* n = snap.Node(id);
  if (n == nullptr) {
    return absl::NotFoundError(absl::StrCat("node: '", id, "' is not in epoch ", snap.epoch()));
  }
  return ForAddress(id, n->store(), n->address());
}

absl::StatusOr<std::shared_ptr<StoreAdapter>> NodeStores::ForAddress(const std::string& id,
                                                                     const std::string& store,
                                                                     const std::string& address) {
  {
    absl::MutexLock l(&mu_);
    auto it = by_node_.find(id);
    if (it != by_node_.end() && it->second.address == address) return it->second.adapter;
  }
  auto made = MakeStoreAdapter(store, address, options_);
  if (!made.ok()) return made.status();
  std::shared_ptr<StoreAdapter> adapter(std::move(*made));
  absl::MutexLock l(&mu_);
  auto& e = by_node_[id];
  if (e.adapter == nullptr || e.address != address) e = Entry{address, adapter};
  return e.adapter;
}

}  // namespace miroir
