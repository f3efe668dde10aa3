#include "worker/router.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/route_sets.h"
#include "common/routing.h"

namespace miroir {

RoutingSnapshot::RoutingSnapshot(v1::ClusterView view) : view_(std::move(view)) {
  for (const auto& g : view_.generations()) by_index_[g.index()].push_back(&g);
  for (const auto& n : view_.nodes()) nodes_[n.id()] = &n;
  for (const auto& g : view_.generations()) {
    for (const auto& r : g.routes()) {
      if (r.state() != v1::SHARD_PAUSED) continue;
      ForEachRouteNode(r, [this](const std::string& n) { cutover_nodes_.insert(n); });
    }
  }
}

absl::StatusOr<std::string> RoutingSnapshot::ResolveIndex(const std::string& name) const {
  if (by_index_.contains(name)) return name;
  auto it = view_.aliases().find(name);
  if (it != view_.aliases().end() && by_index_.contains(it->second)) return it->second;
  return absl::NotFoundError(absl::StrCat("index: unknown index '", name, "'"));
}

absl::StatusOr<KeyRoute> RoutingSnapshot::Route(const std::string& name,
                                                const std::string& pk) const {
  auto index = ResolveIndex(name);
  if (!index.ok()) return index.status();
  KeyRoute out;
  out.index = *index;
  for (const v1::GenerationRoute* g : by_index_.at(*index)) {
    if (g->role() != v1::GENERATION_LIVE && g->role() != v1::GENERATION_SHADOW &&
        g->role() != v1::GENERATION_RETAINED) {
      continue;
    }
    if (g->shards() == 0) continue;
    const uint32_t shard = ShardForKey(pk, g->shards());
    if (static_cast<int>(shard) >= g->routes_size()) {
      return absl::UnavailableError(absl::StrCat("index '", *index,
                                                 "': routing table of generation ", g->generation(),
                                                 " has no entry for shard ", shard));
    }
    const v1::ShardRoute* r = &g->routes(static_cast<int>(shard));
    if (g->role() == v1::GENERATION_LIVE) out.live = static_cast<int>(out.targets.size());
    if (r->state() == v1::SHARD_PAUSED) {
      out.paused = true;
      out.pause_deadline_ms = std::max(out.pause_deadline_ms, r->pause_deadline_ms());
    }
    out.targets.push_back(
        GenerationTarget{*index, g->generation(), g->shards(), shard, g->rf(), g->role(), r});
  }
  if (out.live < 0) {
    return absl::UnavailableError(
        absl::StrCat("index '", *index, "' has no live generation in epoch ", epoch()));
  }
  return out;
}

const v1::GenerationRoute* RoutingSnapshot::Generation(const std::string& index,
                                                       uint64_t generation) const {
  auto it = by_index_.find(index);
  if (it == by_index_.end()) return nullptr;
  for (const v1::GenerationRoute* g : it->second) {
    if (generation == 0 ? g->role() == v1::GENERATION_LIVE : g->generation() == generation) {
      return g;
    }
  }
  return nullptr;
}

const v1::Node* RoutingSnapshot::Node(const std::string& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second;
}

Router::Router() : current_(std::make_shared<RoutingSnapshot>(v1::ClusterView())) {}

bool Router::Apply(v1::ClusterView view) {
  {
    absl::MutexLock l(&mu_);
    if (view.epoch() <= current_->epoch()) return false;
  }
  auto snap = std::make_shared<const RoutingSnapshot>(std::move(view));
  absl::MutexLock l(&mu_);
  if (snap->epoch() <= current_->epoch()) return false;
  current_ = std::move(snap);
  return true;
}

std::shared_ptr<const RoutingSnapshot> Router::Current() const {
  absl::MutexLock l(&mu_);
  return current_;
}

uint64_t Router::epoch() const {
  absl::MutexLock l(&mu_);
  return current_->epoch();
}

std::shared_ptr<const RoutingSnapshot> Router::WaitForNewer(uint64_t epoch,
                                                            absl::Time deadline) const {
  absl::MutexLock l(&mu_);
  auto newer = [this, epoch]()
                   ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return current_->epoch() > epoch; };
  mu_.AwaitWithDeadline(absl::Condition(&newer), deadline);
  return current_;
}

}  // namespace miroir
