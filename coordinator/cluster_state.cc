#include "coordinator/cluster_state.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "coordinator/routing_tables.h"
#include "coordinator/state_upgrade.h"

namespace miroir::coordinator {
namespace {

std::string IdKey(uint64_t id) { return absl::StrFormat("%020d", id); }
std::string RouteKey(uint64_t gen, uint32_t shard) {
  return absl::StrFormat("%020d/%05d", gen, shard);
}

template <typename P>
absl::Status ParseInto(const std::string& kind, const std::string& id, const std::string& bytes,
                       P* out) {
  if (!out->ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("state file: cannot parse ", kind, " ", id));
  }
  return absl::OkStatus();
}

std::string EnumTail(const std::string& name, const std::string& prefix) {
  std::string s = name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
  return absl::AsciiStrToLower(s);
}

}  // namespace

std::string MoveStateName(v1::MoveState s) { return EnumTail(v1::MoveState_Name(s), "MOVE_"); }
std::string PlanStateName(v1::PlanState s) { return EnumTail(v1::PlanState_Name(s), "PLAN_"); }

bool PlanEnded(v1::PlanState s) {
  return s == v1::PLAN_DONE || s == v1::PLAN_FAILED || s == v1::PLAN_ABORTED;
}

v1::Event PlanStateEvent(uint64_t plan_id, v1::PlanState from, v1::PlanState to,
                         const std::string& reason, int64_t now_ms) {
  v1::Event e;
  e.set_time_ms(now_ms);
  e.set_plan_id(plan_id);
  if (from != v1::PLAN_STATE_UNSPECIFIED) e.set_from(PlanStateName(from));
  e.set_to(PlanStateName(to));
  e.set_reason(reason);
  return e;
}

absl::StatusOr<ClusterState> ClusterState::FromLoaded(const LoadedState& loaded) {
  ClusterState s;
  s.epoch = loaded.epoch;
  auto kind = [&](const char* k) -> const std::map<std::string, std::string>& {
    static const std::map<std::string, std::string> kEmpty;
    auto it = loaded.objects.find(k);
    return it == loaded.objects.end() ? kEmpty : it->second;
  };
  for (const auto& [key, value] : kind(kKindMeta)) {
    if (key == "initialized") s.initialized = value == "1";
    if (key == "cluster_name") s.cluster_name = value;
    if (key == "next_id" && !absl::SimpleAtoi(value, &s.next_id)) {
      return absl::DataLossError("state file: bad next_id");
    }
    if (key == "group_order") {
      s.group_order = absl::StrSplit(value, ',', absl::SkipEmpty());
    }
    if (key == "ae_next_round_ms" && !absl::SimpleAtoi(value, &s.ae_next_round_ms)) {
      return absl::DataLossError("state file: bad ae_next_round_ms");
    }
    if (key == "ae_rotation") {
      std::pair<std::string, std::string> parts = absl::StrSplit(value, '/');
      s.ae_rotation_index = parts.first;
      if (!absl::SimpleAtoi(parts.second, &s.ae_rotation_shard)) {
        return absl::DataLossError("state file: bad ae_rotation");
      }
    }
  }
  for (const auto& [id, value] : kind(kKindAePass)) {
    v1::ShardPass p;
    if (auto st = ParseInto(kKindAePass, id, value, &p); !st.ok()) return st;
    s.ae_passes[id] = p;
  }
  for (const auto& [id, value] : kind(kKindWorkerSession)) s.worker_sessions.insert(id);
  for (const auto& [id, value] : kind(kKindReshard)) {
    v1::ReshardRecord r;
    if (auto st = ParseInto(kKindReshard, id, value, &r); !st.ok()) return st;
    if (auto st = UpgradeReshardRecord(&r); !st.ok()) return st;
    s.reshards[r.id()] = r;
  }
  for (const auto& [id, value] : kind(kKindVerify)) {
    v1::VerifyOperation v;
    if (auto st = ParseInto(kKindVerify, id, value, &v); !st.ok()) return st;
    s.verifies[v.id()] = v;
  }
  for (const auto& [id, value] : kind(kKindAeRun)) {
    v1::AntiEntropyRun r;
    if (auto st = ParseInto(kKindAeRun, id, value, &r); !st.ok()) return st;
    s.ae_runs[r.id()] = r;
  }
  for (const auto& [id, value] : kind(kKindNode)) {
    v1::Node n;
    if (auto st = ParseInto(kKindNode, id, value, &n); !st.ok()) return st;
    s.nodes[n.id()] = n;
  }
  for (const auto& [id, value] : kind(kKindIndex)) {
    v1::Index x;
    if (auto st = ParseInto(kKindIndex, id, value, &x); !st.ok()) return st;
    s.indexes[x.name()] = x;
  }
  for (const auto& [id, value] : kind(kKindGeneration)) {
    v1::GenerationRoute g;
    if (auto st = ParseInto(kKindGeneration, id, value, &g); !st.ok()) return st;
    for (uint32_t i = 0; i < g.shards(); ++i) g.add_routes()->set_shard(i);
    s.generations[g.generation()] = g;
  }
  for (const auto& [id, value] : kind(kKindShardRoute)) {
    v1::ShardRoute r;
    if (auto st = ParseInto(kKindShardRoute, id, value, &r); !st.ok()) return st;
    std::vector<std::string> parts = absl::StrSplit(id, '/');
    uint64_t gen = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &gen) || !s.generations.count(gen) ||
        r.shard() >= s.generations[gen].shards()) {
      return absl::DataLossError(absl::StrCat("state file: bad route ", id));
    }
    *s.generations[gen].mutable_routes(r.shard()) = r;
  }
  for (const auto& [id, value] : kind(kKindAlias)) s.aliases[id] = value;
  for (const auto& [id, value] : kind(kKindPlan)) {
    v1::Plan p;
    if (auto st = ParseInto(kKindPlan, id, value, &p); !st.ok()) return st;
    s.plans[p.id()] = p;
  }
  for (const auto& [id, value] : kind(kKindMove)) {
    v1::Move m;
    if (auto st = ParseInto(kKindMove, id, value, &m); !st.ok()) return st;
    UpgradeMove(&m);
    s.moves[m.id()] = m;
  }
  for (const auto& [id, value] : kind(kKindTask)) {
    TaskRecord t;
    if (auto st = ParseInto(kKindTask, id, value, &t.task); !st.ok()) return st;
    s.tasks[t.task.id()] = t;
  }
  // A state written before routes carried a read set: derive it as a commit
  // would have (the rest of the route is kept as stored).
  const std::set<std::string> failed = s.FailedNodes();
  for (auto& [gen_id, gen] : s.generations) {
    for (v1::ShardRoute& r : *gen.mutable_routes()) {
      if (r.sets_are_owners() || r.read_set_size() > 0 || r.owners_size() == 0) continue;
      std::vector<const v1::Move*> moves;
      for (const auto& [mid, m] : s.moves) {
        if (m.generation() == gen_id && m.shard() == r.shard() && m.state() != v1::MOVE_DONE &&
            m.state() != v1::MOVE_ABORTED) {
          moves.push_back(&m);
        }
      }
      SetReadSet(&r, moves, failed, s.group_order);
    }
  }
  return s;
}

std::vector<miroir::GroupNodes> ClusterState::RoutingGroups() const {
  std::vector<miroir::GroupNodes> out;
  for (const auto& g : group_order) {
    miroir::GroupNodes gn{g, {}};
    for (const v1::Node* n : GroupNodes(g)) {
      if (n->status() == v1::NODE_ACTIVE) gn.nodes.push_back(n->id());
    }
    out.push_back(std::move(gn));
  }
  return out;
}

std::vector<const v1::Node*> ClusterState::GroupNodes(const std::string& group) const {
  std::vector<const v1::Node*> out;
  for (const auto& [id, n] : nodes) {
    if (n.group() == group) out.push_back(&n);
  }
  return out;
}

const v1::Index* ClusterState::FindIndex(const std::string& name_or_alias) const {
  auto it = indexes.find(name_or_alias);
  if (it != indexes.end()) return &it->second;
  auto a = aliases.find(name_or_alias);
  if (a == aliases.end()) return nullptr;
  it = indexes.find(a->second);
  return it == indexes.end() ? nullptr : &it->second;
}

std::vector<const v1::Move*> ClusterState::PlanMoves(uint64_t plan_id) const {
  std::vector<const v1::Move*> out;
  for (const auto& [id, m] : moves) {
    if (m.plan_id() == plan_id) out.push_back(&m);
  }
  return out;
}

v1::Plan ClusterState::PlanWithMoves(uint64_t plan_id) const {
  auto it = plans.find(plan_id);
  if (it == plans.end()) return v1::Plan();
  v1::Plan p = it->second;
  for (const v1::Move* m : PlanMoves(plan_id)) *p.add_moves() = *m;
  return p;
}

std::set<std::string> ClusterState::FailedNodes() const {
  std::set<std::string> out;
  for (const auto& [id, n] : nodes) {
    if (n.status() == v1::NODE_FAILED) out.insert(id);
  }
  return out;
}

v1::PlanTask PlanTaskOf(const TaskRecord& t) {
  v1::PlanTask p;
  p.set_id(t.task.id());
  p.set_move_id(t.task.move_id());
  p.set_kind(EnumTail(v1::TaskKind_Name(t.task.kind()), "TASK_"));
  switch (t.status) {
    case TaskRecord::Status::kPending:
      p.set_state(t.failures > 0 ? "retrying" : "pending");
      break;
    case TaskRecord::Status::kLeased:
      p.set_state("leased");
      break;
    case TaskRecord::Status::kDone:
      p.set_state("done");
      break;
    case TaskRecord::Status::kFailed:
      p.set_state("failed");
      break;
  }
  p.set_worker(t.worker);
  p.set_attempts(t.task.lease_generation());
  p.set_failures(t.failures);
  p.set_last_error(t.error);
  p.set_retryable(t.retryable);
  p.set_retry_at_ms(t.retry_at_ms);
  p.set_index(t.task.index());
  p.set_shard(t.task.shard());
  return p;
}

bool Change::empty() const {
  return !bump_epoch && !initialized && !cluster_name && !group_order && nodes.empty() &&
         indexes.empty() && generations.empty() && routes.empty() && aliases.empty() &&
         plans.empty() && moves.empty() && tasks.empty() && deleted_tasks.empty() &&
         events.empty() && next_id == 0 && ae_passes.empty() && ae_runs.empty() &&
         deleted_ae_runs.empty() && !ae_next_round_ms && !ae_rotation && reshards.empty() &&
         verifies.empty() && deleted_verifies.empty() && opened_sessions.empty() &&
         closed_sessions.empty();
}

StateWrite Change::ToWrite(uint64_t new_epoch) const {
  StateWrite w;
  if (bump_epoch) w.epoch = new_epoch;
  if (initialized) w.Set(kKindMeta, "initialized", *initialized ? "1" : "0");
  if (cluster_name) w.Set(kKindMeta, "cluster_name", *cluster_name);
  if (group_order) w.Set(kKindMeta, "group_order", absl::StrJoin(*group_order, ","));
  if (next_id != 0) w.Set(kKindMeta, "next_id", absl::StrCat(next_id));
  for (const auto& [id, n] : nodes) w.Set(kKindNode, id, n.SerializeAsString());
  for (const auto& [id, x] : indexes) w.Set(kKindIndex, id, x.SerializeAsString());
  for (const auto& [id, g] : generations) {
    v1::GenerationRoute meta = g;
    meta.clear_routes();
    w.Set(kKindGeneration, IdKey(id), meta.SerializeAsString());
  }
  for (const auto& [key, r] : routes) {
    w.Set(kKindShardRoute, RouteKey(key.first, key.second), r.SerializeAsString());
  }
  for (const auto& [alias, index] : aliases) {
    if (index.empty()) {
      w.Delete(kKindAlias, alias);
    } else {
      w.Set(kKindAlias, alias, index);
    }
  }
  for (const auto& [id, p] : plans) {
    v1::Plan meta = p;
    meta.clear_moves();
    w.Set(kKindPlan, IdKey(id), meta.SerializeAsString());
  }
  for (const auto& [id, m] : moves) w.Set(kKindMove, IdKey(id), m.SerializeAsString());
  for (const auto& [id, t] : tasks) w.Set(kKindTask, IdKey(id), t.SerializeAsString());
  for (uint64_t id : deleted_tasks) w.Delete(kKindTask, IdKey(id));
  for (const v1::Event& e : events) w.events.push_back({e.plan_id(), e.SerializeAsString()});
  for (const v1::Event& e : audit) w.audit.push_back(e.SerializeAsString());
  for (const auto& [key, p] : ae_passes) w.Set(kKindAePass, key, p.SerializeAsString());
  for (const auto& [id, r] : ae_runs) w.Set(kKindAeRun, IdKey(id), r.SerializeAsString());
  for (uint64_t id : deleted_ae_runs) w.Delete(kKindAeRun, IdKey(id));
  for (const auto& [id, r] : reshards) w.Set(kKindReshard, IdKey(id), r.SerializeAsString());
  for (const auto& [id, v] : verifies) w.Set(kKindVerify, IdKey(id), v.SerializeAsString());
  for (uint64_t id : deleted_verifies) w.Delete(kKindVerify, IdKey(id));
  for (const auto& id : opened_sessions) w.Set(kKindWorkerSession, id, "");
  for (const auto& id : closed_sessions) w.Delete(kKindWorkerSession, id);
  if (ae_next_round_ms) w.Set(kKindMeta, "ae_next_round_ms", absl::StrCat(*ae_next_round_ms));
  if (ae_rotation) {
    w.Set(kKindMeta, "ae_rotation", absl::StrCat(ae_rotation->first, "/", ae_rotation->second));
  }
  return w;
}

v1::Task NewShardTask(const ClusterState& state, Change* change, v1::TaskKind kind,
                      const v1::GenerationRoute& gen, uint32_t shard, uint64_t epoch,
                      const std::vector<std::string>& sources,
                      const std::vector<std::string>& targets, uint32_t batch_size) {
  v1::Task t;
  t.set_id(change->AllocId(state));
  t.set_kind(kind);
  t.set_epoch(epoch);
  t.set_index(gen.index());
  t.set_generation(gen.generation());
  t.set_shards(gen.shards());
  t.set_shard(shard);
  for (const auto& n : sources) t.add_sources(n);
  for (const auto& n : targets) t.add_targets(n);
  t.set_batch_size(batch_size);
  return t;
}

void ApplyChange(const Change& c, uint64_t new_epoch, ClusterState* s) {
  s->epoch = new_epoch;
  if (c.initialized) s->initialized = *c.initialized;
  if (c.cluster_name) s->cluster_name = *c.cluster_name;
  if (c.group_order) s->group_order = *c.group_order;
  if (c.next_id != 0) s->next_id = c.next_id;
  for (const auto& [id, n] : c.nodes) s->nodes[id] = n;
  for (const auto& [id, x] : c.indexes) s->indexes[id] = x;
  for (const auto& [id, g] : c.generations) {
    v1::GenerationRoute& target = s->generations[id];
    auto routes = std::move(*target.mutable_routes());
    target = g;
    target.clear_routes();
    *target.mutable_routes() = std::move(routes);
    while (target.routes_size() < static_cast<int>(target.shards())) {
      target.add_routes()->set_shard(target.routes_size() - 1);
    }
  }
  for (const auto& [key, r] : c.routes) {
    *s->generations[key.first].mutable_routes(static_cast<int>(key.second)) = r;
  }
  for (const auto& [alias, index] : c.aliases) {
    if (index.empty()) {
      s->aliases.erase(alias);
    } else {
      s->aliases[alias] = index;
    }
  }
  for (const auto& [id, p] : c.plans) {
    v1::Plan meta = p;
    meta.clear_moves();
    s->plans[id] = std::move(meta);
  }
  for (const auto& [id, m] : c.moves) s->moves[id] = m;
  for (const auto& [id, t] : c.tasks) {
    auto it = s->tasks.find(id);
    if (it == s->tasks.end()) {
      s->tasks[id].task = t;
    } else {
      it->second.task = t;
    }
  }
  for (uint64_t id : c.deleted_tasks) s->tasks.erase(id);
  for (const auto& [key, p] : c.ae_passes) s->ae_passes[key] = p;
  for (const auto& [id, r] : c.ae_runs) s->ae_runs[id] = r;
  for (uint64_t id : c.deleted_ae_runs) s->ae_runs.erase(id);
  for (const auto& [id, r] : c.reshards) s->reshards[id] = r;
  for (const auto& [id, v] : c.verifies) s->verifies[id] = v;
  for (uint64_t id : c.deleted_verifies) s->verifies.erase(id);
  for (const auto& id : c.opened_sessions) s->worker_sessions.insert(id);
  for (const auto& id : c.closed_sessions) s->worker_sessions.erase(id);
  if (c.ae_next_round_ms) s->ae_next_round_ms = *c.ae_next_round_ms;
  if (c.ae_rotation) {
    s->ae_rotation_index = c.ae_rotation->first;
    s->ae_rotation_shard = c.ae_rotation->second;
  }
}

std::shared_ptr<const v1::ClusterView> BuildView(const ClusterState& s) {
  auto view = std::make_shared<v1::ClusterView>();
  view->set_epoch(s.epoch);
  for (const auto& [id, n] : s.nodes) {
    if (n.status() != v1::NODE_REMOVED) *view->add_nodes() = n;
  }
  for (const auto& [id, g] : s.generations) {
    if (g.role() == v1::GENERATION_LIVE || g.role() == v1::GENERATION_SHADOW ||
        g.role() == v1::GENERATION_RETAINED) {
      *view->add_generations() = g;
    }
  }
  for (const auto& [alias, index] : s.aliases) (*view->mutable_aliases())[alias] = index;
  return view;
}

}  // namespace miroir::coordinator
