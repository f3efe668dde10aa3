#include "coordinator/node_rejoin.h"

#include "absl/strings/str_cat.h"

namespace miroir::coordinator {

const v1::SyncPoint* FindSyncPoint(const v1::Node& node, uint64_t generation, uint32_t shard) {
  for (const auto& p : node.sync_points()) {
    if (p.generation() == generation && p.shard() == shard) return &p;
  }
  return nullptr;
}

void RecordSyncPoints(const ClusterState& s, const v1::Task& pass, const v1::TaskResult& result,
                      Change* c) {
  if (!pass.repair()) return;
  for (const auto& w : result.watermarks()) {
    auto changed = c->nodes.find(w.node());
    v1::Node node;
    if (changed != c->nodes.end()) {
      node = changed->second;
    } else {
      auto it = s.nodes.find(w.node());
      if (it == s.nodes.end()) continue;
      node = it->second;
    }
    v1::SyncPoint* p = nullptr;
    for (auto& q : *node.mutable_sync_points()) {
      if (q.generation() == pass.generation() && q.shard() == pass.shard()) p = &q;
    }
    if (p == nullptr) {
      p = node.add_sync_points();
      p->set_generation(pass.generation());
      p->set_shard(pass.shard());
    }
    p->set_incarnation(w.incarnation());
    p->set_seq(w.seq());
    c->nodes[node.id()] = node;
  }
}

v1::Watermark RescueFrom(const v1::Node& node, uint64_t generation, uint32_t shard) {
  v1::Watermark w;
  if (node.forgotten() || node.failed_incarnation().empty()) return w;
  w.set_node(node.id());
  w.set_incarnation(node.failed_incarnation());
  const v1::SyncPoint* p = FindSyncPoint(node, generation, shard);
  w.set_seq(p != nullptr && p->incarnation() == node.failed_incarnation() ? p->seq() : 0);
  return w;
}

bool HoldsBackPurges(const v1::Node& node) {
  return node.status() == v1::NODE_FAILED && !node.forgotten();
}

v1::Node AsFailed(const v1::Node& node) {
  v1::Node n = node;
  n.set_status(v1::NODE_FAILED);
  n.set_failed_incarnation(node.incarnation());
  n.set_forgotten(false);
  return n;
}

v1::Task NodeFailureFence(const ClusterState& s, Change* change, const v1::GenerationRoute& gen,
                          uint32_t shard, const std::string& node) {
  v1::Task t = NewShardTask(s, change, v1::TASK_FENCE, gen, shard, s.epoch + 1, {}, {node}, 0);
  t.set_node_failure_fence(true);
  return t;
}

bool IsNodeFailureFence(const v1::Task& task) {
  return task.kind() == v1::TASK_FENCE && task.node_failure_fence();
}

v1::Node AsRejoined(const v1::Node& node) {
  v1::Node n = node;
  n.clear_failed_incarnation();
  n.set_forgotten(false);
  return n;
}

absl::StatusOr<v1::ForgetNodeResponse> ForgetNode(const ClusterState& s, const std::string& id) {
  auto it = s.nodes.find(id);
  if (it == s.nodes.end()) return absl::NotFoundError(absl::StrCat("id: unknown node '", id, "'"));
  const v1::Node& node = it->second;
  if (node.status() != v1::NODE_FAILED) {
    return absl::FailedPreconditionError(
        absl::StrCat("id: node '", id, "' is not marked failed (nodes fail first)"));
  }
  if (node.forgotten()) {
    return absl::FailedPreconditionError(absl::StrCat("id: node '", id, "' is already forgotten"));
  }
  for (const auto& [pid, plan] : s.plans) {
    if (!PlanEnded(plan.state()) && plan.kind() == v1::PLAN_REJOIN && plan.node_id() == id) {
      return absl::FailedPreconditionError(
          absl::StrCat("id: node '", id, "' is rejoining (plan ", pid, "); abort it first"));
    }
  }
  v1::ForgetNodeResponse resp;
  uint32_t shards = 0, with_sync = 0;
  for (const auto& [gen_id, gen] : s.generations) {
    for (const auto& route : gen.routes()) {
      bool owns = false;
      for (const auto& o : route.owners()) {
        for (const auto& n : o.nodes()) owns = owns || n == id;
      }
      if (!owns) continue;
      ++shards;
      if (FindSyncPoint(node, gen_id, route.shard()) != nullptr) ++with_sync;
    }
  }
  v1::Node out = node;
  out.set_forgotten(true);
  out.clear_sync_points();
  *resp.mutable_node() = out;
  resp.set_shards(shards);
  resp.set_shards_with_sync_point(with_sync);
  resp.set_possible_loss(
      shards == 0
          ? "none: it owns no shard"
          : absl::StrCat("unknown: entries changed on ", id, " after its sync points (", with_sync,
                         " of ", shards,
                         " shards have one; the others since the start) were not copied to "
                         "the owners and are lost unless it rejoins; its tombstones no longer "
                         "hold back purges"));
  return resp;
}

}  // namespace miroir::coordinator
