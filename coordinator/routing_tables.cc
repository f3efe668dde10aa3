#include "coordinator/routing_tables.h"

#include <algorithm>
#include <map>

namespace miroir::coordinator {
namespace {

void AddSorted(google::protobuf::RepeatedPtrField<v1::GroupOwners>* field,
               const std::map<std::string, std::vector<std::string>>& per_group,
               const std::vector<std::string>& group_order) {
  field->Clear();
  std::set<std::string> done;
  auto add = [&](const std::string& g) {
    auto it = per_group.find(g);
    if (it == per_group.end() || it->second.empty() || !done.insert(g).second) return;
    v1::GroupOwners* o = field->Add();
    o->set_group(g);
    for (const auto& n : it->second) o->add_nodes(n);
  };
  for (const auto& g : group_order) add(g);
  for (const auto& [g, nodes] : per_group) add(g);
}

bool SameGroups(const google::protobuf::RepeatedPtrField<v1::GroupOwners>& a,
                const google::protobuf::RepeatedPtrField<v1::GroupOwners>& b) {
  if (a.size() != b.size()) return false;
  for (int i = 0; i < a.size(); ++i) {
    if (a[i].group() != b[i].group() || a[i].nodes_size() != b[i].nodes_size()) return false;
    for (int j = 0; j < a[i].nodes_size(); ++j) {
      if (a[i].nodes(j) != b[i].nodes(j)) return false;
    }
  }
  return true;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

v1::GenerationRoute BuildInitialRoute(const std::string& index, uint64_t generation,
                                      uint32_t shards, uint32_t rf,
                                      const std::vector<GroupNodes>& groups) {
  v1::GenerationRoute g;
  g.set_index(index);
  g.set_generation(generation);
  g.set_shards(shards);
  g.set_rf(rf);
  g.set_role(v1::GENERATION_LIVE);
  for (uint32_t s = 0; s < shards; ++s) {
    v1::ShardRoute* r = g.add_routes();
    r->set_shard(s);
    r->set_state(v1::SHARD_STABLE);
    r->set_sets_are_owners(true);  // stable, nobody failed: write set = acking set = owners
    for (const GroupAssignment& a : AssignShard(s, groups, rf)) {
      if (a.owners.empty()) continue;
      v1::GroupOwners* o = r->add_owners();
      o->set_group(a.group);
      for (const auto& n : a.owners) o->add_nodes(n);
    }
  }
  return g;
}

std::vector<std::string> StoredOwners(const v1::ShardRoute& route, const std::string& group) {
  for (const auto& o : route.owners()) {
    if (o.group() == group) return {o.nodes().begin(), o.nodes().end()};
  }
  return {};
}

void SetStoredOwners(v1::ShardRoute* route, const std::string& group,
                     const std::vector<std::string>& owners,
                     const std::vector<std::string>& group_order) {
  std::map<std::string, std::vector<std::string>> per_group;
  for (const auto& o : route->owners()) per_group[o.group()] = {o.nodes().begin(), o.nodes().end()};
  per_group[group] = owners;
  AddSorted(route->mutable_owners(), per_group, group_order);
}

bool IsDualWriteState(v1::MoveState s) {
  return s == v1::MOVE_DUAL_WRITE || s == v1::MOVE_COPYING || s == v1::MOVE_CATCHING_UP ||
         IsPausedState(s);
}
bool IsPausedState(v1::MoveState s) { return s == v1::MOVE_PAUSED || s == v1::MOVE_FINAL_DELTA; }
bool StillJoining(const v1::Move& m) {
  // A failed move counts from where it failed (aborted_from).
  const v1::MoveState s = m.state() == v1::MOVE_FAILED ? m.aborted_from() : m.state();
  return s != v1::MOVE_ACTIVE && s != v1::MOVE_RECONCILING && s != v1::MOVE_CLEANUP &&
         s != v1::MOVE_DONE && s != v1::MOVE_ABORTED;
}

void SetReadSet(v1::ShardRoute* route, const std::vector<const v1::Move*>& moves,
                const std::set<std::string>& failed, const std::vector<std::string>& group_order) {
  // Reads skip failed nodes and nodes still joining the shard: a move's joining
  // nodes (a rejoining node is an owner all along) until the move is active.
  std::set<std::string> joining;
  for (const v1::Move* m : moves) {
    if (!StillJoining(*m)) continue;
    for (const auto& n : m->new_owners()) {
      if (!Contains({m->old_owners().begin(), m->old_owners().end()}, n)) joining.insert(n);
    }
  }
  std::map<std::string, std::vector<std::string>> read;
  for (const auto& o : route->owners()) {
    for (const auto& n : o.nodes()) {
      if (!failed.count(n) && !joining.count(n)) read[o.group()].push_back(n);
    }
  }
  AddSorted(route->mutable_read_set(), read, group_order);
}

void RecomputeShardRoute(v1::ShardRoute* route, const std::vector<const v1::Move*>& moves,
                         const std::set<std::string>& failed,
                         const std::vector<std::string>& group_order, int64_t pause_deadline_ms) {
  std::map<std::string, std::vector<std::string>> write, ack;
  auto live = [&](const std::vector<std::string>& v) {
    std::vector<std::string> out;
    for (const auto& n : v) {
      if (!failed.count(n)) out.push_back(n);
    }
    return out;
  };
  for (const auto& o : route->owners()) {
    std::vector<std::string> owners(o.nodes().begin(), o.nodes().end());
    write[o.group()] = live(owners);
    ack[o.group()] = live(owners);
  }
  bool dual = false, paused = false;
  for (const v1::Move* m : moves) {
    if (!IsDualWriteState(m->state())) continue;
    dual = true;
    paused = paused || IsPausedState(m->state());
    std::vector<std::string> old_owners(m->old_owners().begin(), m->old_owners().end());
    std::vector<std::string> new_owners(m->new_owners().begin(), m->new_owners().end());
    std::vector<std::string> w = live(old_owners);
    std::vector<std::string> a = w;
    bool old_has_failed = a.size() < old_owners.size();
    for (const auto& n : new_owners) {
      if (Contains(old_owners, n) || failed.count(n)) continue;
      w.push_back(n);
      if (old_has_failed) a.push_back(n);  // a restore's replacement counts in place
    }
    write[m->group()] = w;
    ack[m->group()] = a;
  }
  AddSorted(route->mutable_write_set(), write, group_order);
  AddSorted(route->mutable_acking_set(), ack, group_order);
  SetReadSet(route, moves, failed, group_order);
  // Store the sets once when all equal the owners (the common, stable case).
  const bool same = SameGroups(route->write_set(), route->owners()) &&
                    SameGroups(route->acking_set(), route->owners()) &&
                    SameGroups(route->read_set(), route->owners());
  route->set_sets_are_owners(same);
  if (same) {
    route->clear_write_set();
    route->clear_acking_set();
    route->clear_read_set();
  }
  route->set_state(paused ? v1::SHARD_PAUSED : dual ? v1::SHARD_DUAL_WRITE : v1::SHARD_STABLE);
  route->set_pause_deadline_ms(paused ? static_cast<uint64_t>(pause_deadline_ms) : 0);
}

}  // namespace miroir::coordinator
