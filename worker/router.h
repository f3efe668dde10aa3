// Router: holds the worker's current ClusterView and answers where a key goes.
// Views are applied in epoch order only (an older or equal epoch is ignored).
// Readers take an immutable snapshot (shared_ptr) and resolve against it, so a
// write is routed consistently at one epoch.
//
// Thread-safe: Apply from the session thread, Current/Resolve from any thread.
#ifndef MIROIR_WORKER_ROUTER_H_
#define MIROIR_WORKER_ROUTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "miroir/v1/types.pb.h"

namespace miroir {

// One generation's route for one key.
struct GenerationTarget {
  std::string index;
  uint64_t generation = 0;
  uint32_t shards = 0;
  uint32_t shard = 0;
  uint32_t rf = 0;
  v1::GenerationRole role = v1::GENERATION_ROLE_UNSPECIFIED;
  const v1::ShardRoute* route = nullptr;  // points into the snapshot
};

// Where a key goes at one epoch: every generation receiving writes; `live` is
// the index into `targets` of the LIVE generation (whose acking set decides).
struct KeyRoute {
  std::string index;  // resolved index name (not the alias)
  std::vector<GenerationTarget> targets;
  int live = -1;
  bool paused = false;             // some target shard is PAUSED
  uint64_t pause_deadline_ms = 0;  // latest deadline among paused targets
};

// An immutable, indexed copy of one view.
class RoutingSnapshot {
 public:
  explicit RoutingSnapshot(v1::ClusterView view);

  uint64_t epoch() const { return view_.epoch(); }
  const v1::ClusterView& view() const { return view_; }

  // Index name for a name or alias; NOT_FOUND ("index: unknown index 'x'").
  absl::StatusOr<std::string> ResolveIndex(const std::string& name_or_alias) const;
  // Route of `pk`. NOT_FOUND for an unknown index, UNAVAILABLE when it has no
  // LIVE generation in the view.
  absl::StatusOr<KeyRoute> Route(const std::string& name_or_alias, const std::string& pk) const;
  // The generation route for (index, generation); generation 0 = the LIVE one.
  const v1::GenerationRoute* Generation(const std::string& index, uint64_t generation) const;
  // The node, or nullptr.
  const v1::Node* Node(const std::string& id) const;
  // Every node holding a copy of a shard whose writes are held (SHARD_PAUSED) at
  // this epoch, in any group: the nodes a cutover is running on.
  const absl::flat_hash_set<std::string>& CutoverNodes() const { return cutover_nodes_; }

 private:
  v1::ClusterView view_;
  absl::flat_hash_set<std::string> cutover_nodes_;
  absl::flat_hash_map<std::string, std::vector<const v1::GenerationRoute*>> by_index_;
  absl::flat_hash_map<std::string, const v1::Node*> nodes_;
};

class Router {
 public:
  Router();

  // Applies `view` when its epoch is newer than the current one. Returns true when
  // applied.
  bool Apply(v1::ClusterView view);
  // The current snapshot (epoch 0 and empty before the first view).
  std::shared_ptr<const RoutingSnapshot> Current() const;
  uint64_t epoch() const;
  // Blocks until the epoch is above `epoch` or `deadline` passes; returns the
  // current snapshot either way.
  std::shared_ptr<const RoutingSnapshot> WaitForNewer(uint64_t epoch, absl::Time deadline) const;

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const RoutingSnapshot> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace miroir

#endif  // MIROIR_WORKER_ROUTER_H_
