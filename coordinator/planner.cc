#include "coordinator/planner.h"

#include <algorithm>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/routing.h"
#include "common/status_macros.h"
#include "coordinator/fleet_spec.h"
#include "coordinator/routing_tables.h"

namespace miroir::coordinator {
namespace {

// Nodes routing considers members of a group (failed nodes stay members until a
// restore replaces them; leaving and removed nodes do not).
bool IsMember(const v1::Node& n) {
  return n.status() == v1::NODE_ACTIVE || n.status() == v1::NODE_JOINING ||
         n.status() == v1::NODE_FAILED;
}

std::set<std::string> AsSet(const google::protobuf::RepeatedPtrField<std::string>& v) {
  return {v.begin(), v.end()};
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ChooseSources(const v1::ShardRoute& route,
                                                       const v1::Move& move, uint32_t rf,
                                                       const std::set<std::string>& failed,
                                                       const std::vector<std::string>& order) {
  auto live_owners = [&](const std::string& group) {
    std::vector<std::string> out;
    for (const auto& n : StoredOwners(route, group)) {
      if (!failed.count(n)) out.push_back(n);
    }
    return out;
  };
  std::vector<std::string> groups = order;
  for (const auto& o : route.owners()) {
    if (std::find(groups.begin(), groups.end(), o.group()) == groups.end()) {
      groups.push_back(o.group());
    }
  }
  const uint32_t need = MinSources(rf);
  if (move.new_owners().empty()) {
    // Remove-group: the group's data is dropped, so read from every group.
    std::vector<std::string> all;
    for (const auto& g : groups) {
      for (const auto& n : live_owners(g)) all.push_back(n);
    }
    if (all.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("no live owner can serve shard ", move.shard(), " of ", move.index()));
    }
    return all;
  }
  std::vector<std::string> own = live_owners(move.group());
  if (own.size() >= need) return own;
  for (const auto& g : groups) {
    if (g == move.group()) continue;
    std::vector<std::string> other = live_owners(g);
    if (other.size() >= need) return other;
  }
  // Fewer than rf−q+1 anywhere: read what is left rather than nothing, if anything.
  if (!own.empty()) return own;
  return absl::FailedPreconditionError(absl::StrCat("no group has ", need,
                                                    " live owners to serve shard ", move.shard(),
                                                    " of index ", move.index()));
}

namespace {

// What a plan changes in the membership, as its kind decides it; the moves follow
// from it (AddMoves).
struct Membership {
  std::map<std::string, std::vector<std::string>> after;  // members per group after the plan
  std::vector<std::string> order;                         // group order after the plan
  std::string rejoin_node;                                // rejoin: J = {node}
};

void Erase(std::vector<std::string>* v, const std::string& x) {
  v->erase(std::remove(v->begin(), v->end(), x), v->end());
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

absl::StatusOr<const v1::Node*> FindNode(const ClusterState& state, const std::string& id) {
  MIROIR_RETURN_IF_ERROR(ValidateId("node_id", id));
  auto it = state.nodes.find(id);
  if (it == state.nodes.end()) {
    return absl::NotFoundError(absl::StrCat("node_id: unknown node '", id, "'"));
  }
  return &it->second;
}

// A failed node, for restore and rejoin.
absl::StatusOr<const v1::Node*> FindFailedNode(const ClusterState& state, const std::string& id) {
  MIROIR_ASSIGN_OR_RETURN(const v1::Node* n, FindNode(state, id));
  if (n->status() != v1::NODE_FAILED) {
    return absl::FailedPreconditionError(
        absl::StrCat("node_id: node '", n->id(), "' is not marked failed"));
  }
  return n;
}

absl::Status PlanAddNode(const ClusterState& state, const PlanRequest& req, Membership* m,
                         PlanDraft* draft) {
  MIROIR_RETURN_IF_ERROR(ValidateId("node_id", req.node_id));
  MIROIR_RETURN_IF_ERROR(ValidateId("group", req.group));
  MIROIR_RETURN_IF_ERROR(ValidateAddress("address", req.address));
  const std::string store = req.store.empty() ? "redis" : req.store;
  MIROIR_RETURN_IF_ERROR(ValidateStore("store", store));
  if (state.nodes.count(req.node_id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("node_id: node '", req.node_id, "' already exists"));
  }
  if (!Contains(m->order, req.group)) {
    return absl::NotFoundError(absl::StrCat("group: unknown group '", req.group, "'"));
  }
  v1::Node n;
  n.set_id(req.node_id);
  n.set_group(req.group);
  n.set_address(req.address);
  n.set_store(store);
  n.set_status(v1::NODE_JOINING);
  draft->nodes.push_back(n);
  m->after[req.group].push_back(req.node_id);
  draft->plan.set_description(absl::StrCat("add node ", req.node_id, " to ", req.group));
  return absl::OkStatus();
}

absl::Status PlanRemoveNode(const ClusterState& state, const PlanRequest& req, Membership* m,
                            PlanDraft* draft) {
  MIROIR_ASSIGN_OR_RETURN(const v1::Node* n, FindNode(state, req.node_id));
  if (n->status() != v1::NODE_ACTIVE) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node_id: node '", n->id(), "' is not active (a failed node is restored instead)"));
  }
  Erase(&m->after[n->group()], n->id());
  v1::Node changed = *n;
  changed.set_status(v1::NODE_LEAVING);
  draft->nodes.push_back(changed);
  draft->plan.set_group(n->group());
  draft->plan.set_description(absl::StrCat("remove node ", n->id(), " from ", n->group()));
  return absl::OkStatus();
}

absl::Status PlanAddGroup(const ClusterState& state, const PlanRequest& req, Membership* m,
                          PlanDraft* draft) {
  MIROIR_RETURN_IF_ERROR(ValidateId("group", req.group));
  if (Contains(m->order, req.group)) {
    return absl::AlreadyExistsError(absl::StrCat("group: group '", req.group, "' already exists"));
  }
  if (req.nodes.empty()) return absl::InvalidArgumentError("nodes: at least one node");
  std::set<std::string> seen;
  for (size_t i = 0; i < req.nodes.size(); ++i) {
    const v1::Node& spec = req.nodes[i];
    const std::string f = absl::StrCat("nodes[", i, "]");
    MIROIR_RETURN_IF_ERROR(ValidateId(f + ".id", spec.id()));
    MIROIR_RETURN_IF_ERROR(ValidateAddress(f + ".address", spec.address()));
    const std::string store = spec.store().empty() ? "redis" : spec.store();
    MIROIR_RETURN_IF_ERROR(ValidateStore(f + ".store", store));
    if (state.nodes.count(spec.id()) || !seen.insert(spec.id()).second) {
      return absl::AlreadyExistsError(
          absl::StrCat(f, ".id: node '", spec.id(), "' already exists"));
    }
    v1::Node n = spec;
    n.set_group(req.group);
    n.set_store(store);
    n.set_status(v1::NODE_JOINING);
    draft->nodes.push_back(n);
    m->after[req.group].push_back(n.id());
  }
  m->order.push_back(req.group);
  draft->group_order = m->order;
  draft->plan.set_description(absl::StrCat("add group ", req.group));
  return absl::OkStatus();
}

absl::Status PlanRemoveGroup(const ClusterState& state, const PlanRequest& req, Membership* m,
                             PlanDraft* draft) {
  MIROIR_RETURN_IF_ERROR(ValidateId("group", req.group));
  if (!Contains(m->order, req.group)) {
    return absl::NotFoundError(absl::StrCat("group: unknown group '", req.group, "'"));
  }
  if (m->order.size() == 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("group: '", req.group, "' is the last group"));
  }
  m->after.erase(req.group);
  for (const v1::Node* n : state.GroupNodes(req.group)) {
    if (!IsMember(*n)) continue;
    v1::Node changed = *n;
    changed.set_status(v1::NODE_LEAVING);
    draft->nodes.push_back(changed);
  }
  draft->plan.set_description(absl::StrCat("remove group ", req.group));
  return absl::OkStatus();
}

absl::Status PlanRestore(const ClusterState& state, const PlanRequest& req, Membership* m,
                         PlanDraft* draft) {
  MIROIR_ASSIGN_OR_RETURN(const v1::Node* n, FindFailedNode(state, req.node_id));
  Erase(&m->after[n->group()], n->id());
  draft->plan.set_group(n->group());
  draft->plan.set_description(absl::StrCat("restore rf after failed node ", n->id()));
  return absl::OkStatus();
}

absl::Status PlanRejoin(const ClusterState& state, const PlanRequest& req, Membership* m,
                        PlanDraft* draft) {
  MIROIR_ASSIGN_OR_RETURN(const v1::Node* n, FindFailedNode(state, req.node_id));
  m->rejoin_node = n->id();
  v1::Node changed = *n;
  changed.set_status(v1::NODE_JOINING);
  draft->nodes.push_back(changed);
  draft->plan.set_group(n->group());
  draft->plan.set_description(absl::StrCat("rejoin node ", n->id()));
  return absl::OkStatus();
}

using KindPlanner = absl::Status (*)(const ClusterState&, const PlanRequest&, Membership*,
                                     PlanDraft*);

absl::StatusOr<KindPlanner> PlannerFor(v1::PlanKind kind) {
  switch (kind) {
    case v1::PLAN_ADD_NODE:
      return PlanAddNode;
    case v1::PLAN_REMOVE_NODE:
      return PlanRemoveNode;
    case v1::PLAN_ADD_GROUP:
      return PlanAddGroup;
    case v1::PLAN_REMOVE_GROUP:
      return PlanRemoveGroup;
    case v1::PLAN_RESTORE:
      return PlanRestore;
    case v1::PLAN_REJOIN:
      return PlanRejoin;
    default:
      return absl::InvalidArgumentError(
          "kind: must be add_node, remove_node, add_group, remove_group, restore or rejoin");
  }
}

// Every index must still fit: rf ≤ members of every group left.
absl::Status CheckIndexesFit(const ClusterState& state, const PlanRequest& req,
                             const Membership& m) {
  for (const auto& [name, index] : state.indexes) {
    for (const auto& g : m.order) {
      if (req.kind == v1::PLAN_REMOVE_GROUP && g == req.group) continue;
      auto it = m.after.find(g);
      const size_t size = it == m.after.end() ? 0 : it->second.size();
      if (size < index.rf()) {
        return absl::FailedPreconditionError(absl::StrCat("group ", g, " would have ", size,
                                                          " nodes, fewer than rf ", index.rf(),
                                                          " of index ", name));
      }
    }
  }
  return absl::OkStatus();
}

// The move of one shard of `gen` in group `g`, or nullopt when its owners do
// not change.
std::optional<v1::Move> MoveOf(uint64_t gen_id, const v1::GenerationRoute& gen,
                               const v1::ShardRoute& route, const std::string& g,
                               const Membership& m) {
  std::vector<std::string> old_owners = StoredOwners(route, g);
  std::vector<std::string> new_owners;
  if (!m.rejoin_node.empty()) {
    // Rejoin: J = {node} for every shard it still owns.
    if (!Contains(old_owners, m.rejoin_node)) return std::nullopt;
    new_owners = old_owners;
    Erase(&old_owners, m.rejoin_node);
  } else {
    auto it = m.after.find(g);
    if (it != m.after.end() && !it->second.empty()) {
      new_owners = Owners(route.shard(), it->second, gen.rf());
    }
    if (std::set<std::string>(old_owners.begin(), old_owners.end()) ==
        std::set<std::string>(new_owners.begin(), new_owners.end())) {
      return std::nullopt;
    }
  }
  v1::Move mv;
  mv.set_index(gen.index());
  mv.set_generation(gen_id);
  mv.set_shard(route.shard());
  mv.set_group(g);
  for (const auto& n : old_owners) mv.add_old_owners(n);
  for (const auto& n : new_owners) mv.add_new_owners(n);
  mv.set_state(v1::MOVE_PENDING);
  return mv;
}

// The moves of the plan's group (other groups are never touched, DESIGN §3),
// with their sources and estimates. Returns the documents to copy, summed over
// the joining nodes.
absl::StatusOr<uint64_t> AddMoves(const ClusterState& state, const Membership& m,
                                  const std::map<std::string, NodeHealth>& health, v1::Plan* plan) {
  const std::string& g = plan->group();
  if (!Contains(m.order, g)) return 0;
  const std::set<std::string> failed = state.FailedNodes();
  uint64_t total_docs = 0;
  for (const auto& [gen_id, gen] : state.generations) {
    if (gen.role() == v1::GENERATION_DROPPED) continue;
    for (const v1::ShardRoute& route : gen.routes()) {
      std::optional<v1::Move> mv = MoveOf(gen_id, gen, route, g, m);
      if (!mv) continue;
      MIROIR_ASSIGN_OR_RETURN(auto sources, ChooseSources(route, *mv, gen.rf(), failed, m.order));
      // Rejoin copies from the node's peers; treat the node as absent.
      if (!m.rejoin_node.empty()) Erase(&sources, m.rejoin_node);
      for (const auto& s : sources) mv->add_sources(s);
      // Estimates from the largest copy among the sources.
      uint64_t docs = 0, bytes = 0;
      for (const auto& s : sources) {
        auto h = health.find(s);
        if (h == health.end()) continue;
        auto st = h->second.shards.find({gen.index(), gen_id, route.shard()});
        if (st == h->second.shards.end()) continue;
        docs = std::max(docs, st->second.first);
        bytes = std::max(bytes, st->second.second);
      }
      mv->set_est_documents(docs);
      mv->set_est_bytes(bytes);
      std::set<std::string> old_set = AsSet(mv->old_owners());
      uint64_t joining = 0;
      for (const auto& n : mv->new_owners()) joining += old_set.count(n) ? 0 : 1;
      total_docs += docs * std::max<uint64_t>(joining, 1);
      *plan->add_moves() = *std::move(mv);
    }
  }
  return total_docs;
}

}  // namespace

absl::StatusOr<PlanDraft> PlanChange(const ClusterState& state, const PlanRequest& req,
                                     const std::map<std::string, NodeHealth>& health) {
  if (!state.initialized) {
    return absl::FailedPreconditionError("cluster is not initialised (run cluster init first)");
  }
  PlanDraft draft;
  v1::Plan& plan = draft.plan;
  plan.set_kind(req.kind);
  plan.set_node_id(req.node_id);
  plan.set_group(req.group);
  plan.set_throttle_docs_per_s(req.throttle_docs_per_s);

  Membership m;
  m.order = state.group_order;
  for (const auto& [id, n] : state.nodes) {
    if (IsMember(n)) m.after[n.group()].push_back(id);
  }
  MIROIR_ASSIGN_OR_RETURN(KindPlanner plan_kind, PlannerFor(req.kind));
  MIROIR_RETURN_IF_ERROR(plan_kind(state, req, &m, &draft));
  MIROIR_RETURN_IF_ERROR(CheckIndexesFit(state, req, m));
  MIROIR_ASSIGN_OR_RETURN(const uint64_t total_docs, AddMoves(state, m, health, &plan));

  const uint64_t rate = req.throttle_docs_per_s ? req.throttle_docs_per_s : kNominalDocsPerSecond;
  if (!req.throttle_docs_per_s && total_docs > 0) {
    plan.add_warnings(
        absl::StrCat("unthrottled: duration estimated at ", kNominalDocsPerSecond, " documents/s"));
  }
  if (health.empty()) {
    plan.add_warnings("no node statistics reported yet: document and byte estimates are 0");
  }
  plan.set_est_duration_s(static_cast<double>(total_docs) / static_cast<double>(rate));
  if (plan.moves().empty()) plan.add_warnings("no shard changes owners");
  return draft;
}

}  // namespace miroir::coordinator
