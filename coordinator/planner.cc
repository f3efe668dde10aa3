#include "coordinator/planner.h"

#include <algorithm>
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

  // Membership after the change, per group.
  std::map<std::string, std::vector<std::string>> after;
  std::vector<std::string> order = state.group_order;
  for (const auto& [id, n] : state.nodes) {
    if (IsMember(n)) after[n.group()].push_back(id);
  }
  const std::set<std::string> failed = state.FailedNodes();
  std::string rejoin_node;

  auto find_node = [&](const std::string& id) -> absl::StatusOr<const v1::Node*> {
    MIROIR_RETURN_IF_ERROR(ValidateId("node_id", id));
    auto it = state.nodes.find(id);
    if (it == state.nodes.end()) {
      return absl::NotFoundError(absl::StrCat("node_id: unknown node '", id, "'"));
    }
    return &it->second;
  };

  switch (req.kind) {
    case v1::PLAN_ADD_NODE: {
      MIROIR_RETURN_IF_ERROR(ValidateId("node_id", req.node_id));
      MIROIR_RETURN_IF_ERROR(ValidateId("group", req.group));
      MIROIR_RETURN_IF_ERROR(ValidateAddress("address", req.address));
      const std::string store = req.store.empty() ? "redis" : req.store;
      MIROIR_RETURN_IF_ERROR(ValidateStore("store", store));
      if (state.nodes.count(req.node_id)) {
        return absl::AlreadyExistsError(
            absl::StrCat("node_id: node '", req.node_id, "' already exists"));
      }
      if (std::find(order.begin(), order.end(), req.group) == order.end()) {
        return absl::NotFoundError(absl::StrCat("group: unknown group '", req.group, "'"));
      }
      v1::Node n;
      n.set_id(req.node_id);
      n.set_group(req.group);
      n.set_address(req.address);
      n.set_store(store);
      n.set_status(v1::NODE_JOINING);
      draft.nodes.push_back(n);
      after[req.group].push_back(req.node_id);
      plan.set_description(absl::StrCat("add node ", req.node_id, " to ", req.group));
      break;
    }
    case v1::PLAN_REMOVE_NODE: {
      MIROIR_ASSIGN_OR_RETURN(const v1::Node* n, find_node(req.node_id));
      if (n->status() != v1::NODE_ACTIVE) {
        return absl::FailedPreconditionError(absl::StrCat(
            "node_id: node '", n->id(), "' is not active (a failed node is restored instead)"));
      }
      auto& members = after[n->group()];
      members.erase(std::remove(members.begin(), members.end(), n->id()), members.end());
      v1::Node changed = *n;
      changed.set_status(v1::NODE_LEAVING);
      draft.nodes.push_back(changed);
      plan.set_group(n->group());
      plan.set_description(absl::StrCat("remove node ", n->id(), " from ", n->group()));
      break;
    }
    case v1::PLAN_ADD_GROUP: {
      MIROIR_RETURN_IF_ERROR(ValidateId("group", req.group));
      if (std::find(order.begin(), order.end(), req.group) != order.end()) {
        return absl::AlreadyExistsError(
            absl::StrCat("group: group '", req.group, "' already exists"));
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
        draft.nodes.push_back(n);
        after[req.group].push_back(n.id());
      }
      order.push_back(req.group);
      draft.group_order = order;
      plan.set_description(absl::StrCat("add group ", req.group));
      break;
    }
    case v1::PLAN_REMOVE_GROUP: {
      MIROIR_RETURN_IF_ERROR(ValidateId("group", req.group));
      if (std::find(order.begin(), order.end(), req.group) == order.end()) {
        return absl::NotFoundError(absl::StrCat("group: unknown group '", req.group, "'"));
      }
      if (order.size() == 1) {
        return absl::FailedPreconditionError(
            absl::StrCat("group: '", req.group, "' is the last group"));
      }
      after.erase(req.group);
      for (const v1::Node* n : state.GroupNodes(req.group)) {
        if (!IsMember(*n)) continue;
        v1::Node changed = *n;
        changed.set_status(v1::NODE_LEAVING);
        draft.nodes.push_back(changed);
      }
      plan.set_description(absl::StrCat("remove group ", req.group));
      break;
    }
    case v1::PLAN_RESTORE: {
      MIROIR_ASSIGN_OR_RETURN(const v1::Node* n, find_node(req.node_id));
      if (n->status() != v1::NODE_FAILED) {
        return absl::FailedPreconditionError(
            absl::StrCat("node_id: node '", n->id(), "' is not marked failed"));
      }
      auto& members = after[n->group()];
      members.erase(std::remove(members.begin(), members.end(), n->id()), members.end());
      plan.set_group(n->group());
      plan.set_description(absl::StrCat("restore rf after failed node ", n->id()));
      break;
    }
    case v1::PLAN_REJOIN: {
      MIROIR_ASSIGN_OR_RETURN(const v1::Node* n, find_node(req.node_id));
      if (n->status() != v1::NODE_FAILED) {
        return absl::FailedPreconditionError(
            absl::StrCat("node_id: node '", n->id(), "' is not marked failed"));
      }
      rejoin_node = n->id();
      v1::Node changed = *n;
      changed.set_status(v1::NODE_JOINING);
      draft.nodes.push_back(changed);
      plan.set_group(n->group());
      plan.set_description(absl::StrCat("rejoin node ", n->id()));
      break;
    }
    default:
      return absl::InvalidArgumentError("kind: must be add_node, remove_node, add_group, "
                                        "remove_group, restore or rejoin");
  }

  // Every index must still fit: rf ≤ members of every group.
  for (const auto& [name, index] : state.indexes) {
    for (const auto& g : order) {
      if (req.kind == v1::PLAN_REMOVE_GROUP && g == req.group) continue;
      size_t size = after[g].size();
      if (size < index.rf()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "group ", g, " would have ", size, " nodes, fewer than rf ", index.rf(),
            " of index ", name));
      }
    }
  }

  uint64_t total_docs = 0;
  for (const auto& [gen_id, gen] : state.generations) {
    if (gen.role() == v1::GENERATION_DROPPED) continue;
    for (const v1::ShardRoute& route : gen.routes()) {
      std::set<std::string> groups(order.begin(), order.end());
      for (const auto& o : route.owners()) groups.insert(o.group());
      for (const std::string& g : order) {
        if (!groups.count(g)) continue;
        // Other groups are never touched (DESIGN §3): only the plan's group moves.
        if (g != plan.group()) continue;
        std::vector<std::string> old_owners = StoredOwners(route, g);
        std::vector<std::string> new_owners;
        if (!rejoin_node.empty()) {
          // Rejoin: J = {node} for every shard it still owns.
          if (std::find(old_owners.begin(), old_owners.end(), rejoin_node) == old_owners.end()) {
            continue;
          }
          new_owners = old_owners;
          old_owners.erase(std::remove(old_owners.begin(), old_owners.end(), rejoin_node),
                           old_owners.end());
        } else {
          auto it = after.find(g);
          if (it != after.end() && !it->second.empty()) {
            new_owners = Owners(route.shard(), it->second, gen.rf());
          }
          if (std::set<std::string>(old_owners.begin(), old_owners.end()) ==
              std::set<std::string>(new_owners.begin(), new_owners.end())) {
            continue;
          }
        }
        v1::Move m;
        m.set_index(gen.index());
        m.set_generation(gen_id);
        m.set_shard(route.shard());
        m.set_group(g);
        for (const auto& n : old_owners) m.add_old_owners(n);
        for (const auto& n : new_owners) m.add_new_owners(n);
        m.set_state(v1::MOVE_PENDING);
        // Rejoin copies from the node's peers; treat the node as absent.
        std::set<std::string> unavailable = failed;
        MIROIR_ASSIGN_OR_RETURN(auto sources,
                                ChooseSources(route, m, gen.rf(), unavailable, order));
        if (!rejoin_node.empty()) {
          sources.erase(std::remove(sources.begin(), sources.end(), rejoin_node), sources.end());
        }
        for (const auto& s : sources) m.add_sources(s);
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
        m.set_est_documents(docs);
        m.set_est_bytes(bytes);
        std::set<std::string> old_set = AsSet(m.old_owners());
        uint64_t joining = 0;
        for (const auto& n : m.new_owners()) joining += old_set.count(n) ? 0 : 1;
        total_docs += docs * std::max<uint64_t>(joining, 1);
        *plan.add_moves() = m;
      }
    }
  }
  const uint64_t rate = req.throttle_docs_per_s ? req.throttle_docs_per_s : kNominalDocsPerSecond;
  if (!req.throttle_docs_per_s && total_docs > 0) {
    plan.add_warnings(absl::StrCat("unthrottled: duration estimated at ", kNominalDocsPerSecond,
                                   " documents/s"));
  }
  if (health.empty()) {
    plan.add_warnings("no node statistics reported yet: document and byte estimates are 0");
  }
  plan.set_est_duration_s(static_cast<double>(total_docs) / static_cast<double>(rate));
  if (plan.moves().empty()) plan.add_warnings("no shard changes owners");
  return draft;
}

}  // namespace miroir::coordinator
