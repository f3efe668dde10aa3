#include "coordinator/coordinator.h"

#include <algorithm>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/build_info.h"
#include "common/route_sets.h"
#include "common/status_macros.h"
#include "coordinator/anti_entropy_runner.h"
#include "coordinator/audit.h"
#include "coordinator/fleet_spec.h"
#include "coordinator/move_machine.h"
#include "coordinator/node_rejoin.h"
#include "coordinator/plan_runner.h"
#include "coordinator/planner.h"
#include "coordinator/read_exclusions.h"
#include "coordinator/recovery_passes.h"
#include "coordinator/reshard_runner.h"
#include "coordinator/routing_tables.h"
#include "coordinator/schedule_window.h"
#include "coordinator/standby_server.h"
#include "coordinator/verify_ops.h"
#include "spdlog/spdlog.h"

namespace miroir::coordinator {

Coordinator::Coordinator(CoordinatorConfig config, std::unique_ptr<StateStore> store,
                         const Clock* clock)
    : config_(std::move(config)),
      store_(std::move(store)),
      clock_(clock),
      started_ms_(clock->NowMs()),
      registry_(clock, config_.worker_lease_ttl) {}

namespace {

// A model recorded for another cluster is not this coordinator's to serve.
absl::Status CheckClusterName(const ClusterState& state, const CoordinatorConfig& config) {
  if (state.cluster_name.empty() || state.cluster_name == config.cluster_name) {
    return absl::OkStatus();
  }
  const std::string where = config.state.backend == "etcd"
                                ? absl::StrCat("state.etcd.prefix ", config.state.etcd.prefix)
                                : absl::StrCat("data_dir ", config.data_dir);
  return absl::FailedPreconditionError(absl::StrCat(
      "cluster_name: ", where, " holds the model of cluster '", state.cluster_name, "', not '",
      config.cluster_name, "'; point it at this cluster's model or set cluster_name"));
}

// The model in `store`, as the coordinator holds it.
absl::StatusOr<ClusterState> LoadModel(StateStore& store) {
  MIROIR_ASSIGN_OR_RETURN(LoadedState loaded, store.Load());
  return ClusterState::FromLoaded(loaded);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Open(
    CoordinatorConfig config, std::unique_ptr<StateStore> store, const Clock* clock,
    std::function<std::string()> standby_leader) {
  MIROIR_ASSIGN_OR_RETURN(ClusterState state, LoadModel(*store));
  MIROIR_RETURN_IF_ERROR(CheckClusterName(state, config));
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(config), std::move(store), clock));
  c->standby_leader_ = std::move(standby_leader);
  absl::MutexLock l(&c->mu_);
  c->state_ = std::move(state);
  c->view_ = BuildView(c->state_);
  c->config_loaded_ms_ = clock->NowMs();
  return c;
}

void Coordinator::MakeRunners() {
  runner_ = std::make_unique<PlanRunner>(this);
  ae_ = std::make_unique<AntiEntropyRunner>(this);
  reshard_ = std::make_unique<ReshardRunner>(this);
}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::CreateStandby(
    CoordinatorConfig config, std::unique_ptr<StateStore> store, const Clock* clock,
    std::function<std::string()> leader) {
  MIROIR_ASSIGN_OR_RETURN(std::unique_ptr<Coordinator> c,
                          Open(std::move(config), std::move(store), clock, std::move(leader)));
  c->MakeRunners();
  return c;
}

absl::Status Coordinator::ReloadFromStore() {
  {
    absl::MutexLock w(&write_mu_);
    MIROIR_ASSIGN_OR_RETURN(ClusterState state, LoadModel(*store_));
    absl::MutexLock l(&mu_);
    state_ = std::move(state);
    view_ = BuildView(state_);
  }
  NotifyChange();  // plan and reshard watchers on a standby follow too
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(CoordinatorConfig config,
                                                                 std::unique_ptr<StateStore> store,
                                                                 const Clock* clock) {
  MIROIR_ASSIGN_OR_RETURN(std::unique_ptr<Coordinator> c,
                          Open(std::move(config), std::move(store), clock, nullptr));
  // Verify tasks of a running operation are leased again (it resumes); others
  // (none is written any more) would answer nobody.
  std::vector<uint64_t> stale;
  {
    absl::MutexLock l(&c->mu_);
    for (const auto& [id, t] : c->state_.tasks) {
      if (t.task.kind() != v1::TASK_VERIFY) continue;
      auto op = c->state_.verifies.find(t.task.verify_id());
      if (op == c->state_.verifies.end() || op->second.state() != kVerifyRunning) {
        stale.push_back(id);
      }
    }
    // Versions of the exclusion list count anew in every process: workers tell
    // processes apart by this (never 0).
    std::random_device rd;
    c->read_exclusions_.set_run(((uint64_t{rd()} << 32) | rd()) | 1);
    c->sessions_before_start_ = c->state_.worker_sessions;
    c->RefreshReadExclusions();
  }
  if (!stale.empty()) {
    auto st = c->Mutate([&](const ClusterState&, Change* ch) {
      for (uint64_t id : stale) ch->deleted_tasks.insert(id);
      return absl::OkStatus();
    });
    if (!st.ok()) return st.status();
  }
  c->MakeRunners();
  {
    absl::ReaderMutexLock l(&c->mu_);  // no other thread yet; the analysis asks for it
    spdlog::info("coordinator state loaded: epoch {}, {} plans, {} moves, {} tasks",
                 c->state_.epoch, c->state_.plans.size(), c->state_.moves.size(),
                 c->state_.tasks.size());
  }
  return c;
}

Coordinator::~Coordinator() { Stop(); }

void Coordinator::Start(absl::Duration tick) {
  absl::MutexLock l(&run_mu_);
  if (runner_thread_.joinable()) return;
  stopping_ = false;
  runner_thread_ = std::thread([this, tick] { RunLoop(tick); });
}

void Coordinator::Stop() {
  {
    absl::MutexLock l(&run_mu_);
    stopping_ = true;
  }
  if (runner_thread_.joinable()) runner_thread_.join();
}

StepInput Coordinator::StepInputNow() {
  const int64_t now = clock_->NowMs();
  return StepInput{
      now,
      absl::Milliseconds(now - started_ms_) >= config_.worker_lease_ttl + config_.max_clock_drift,
      [this](uint64_t epoch) { return registry_.AllLiveAcked(epoch); }};
}

int64_t Coordinator::NextCutoverDeadlineMs() {
  const int64_t now = clock_->NowMs();
  const MigrationConfig& cfg = config_.migration;
  int64_t next = 0;
  auto consider = [&next](int64_t at) {
    if (at > 0 && (next == 0 || at < next)) next = at;
  };
  absl::ReaderMutexLock l(&mu_);
  for (const auto& [id, m] : state_.moves) {
    if (!IsPausedState(m.state())) continue;
    consider(MoveMachine::NextCutoverDeadlineMs(m.paused_at_ms(), m.state() == v1::MOVE_PAUSED, now,
                                                cfg));
  }
  for (const auto& [id, r] : state_.reshards) {
    consider(MoveMachine::NextCutoverDeadlineMs(r.paused_at_ms(),
                                                r.step() == v1::RESHARD_STEP_PAUSING, now, cfg));
  }
  return next;
}

void Coordinator::RunLoop(absl::Duration tick) {
  while (true) {
    absl::Duration wait = tick;
    if (const int64_t next = NextCutoverDeadlineMs(); next > 0) {
      wait = std::min(wait, absl::Milliseconds(std::max<int64_t>(0, next - clock_->NowMs())));
    }
    {
      absl::MutexLock l(&run_mu_);
      run_mu_.AwaitWithTimeout(absl::Condition(
                                   +[](Coordinator* c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                     return c->stopping_ || c->wake_;
                                   },
                                   this),
                               wait);
      if (stopping_) return;
      wake_ = false;
    }
    ApplyPendingConfig();  // between ticks: the runners read config_ unlocked
    ae_->Tick();
    runner_->Tick();
    TickVerifies();
  }
}

void Coordinator::TickForTest() {
  ApplyPendingConfig();
  ae_->Tick();
  runner_->Tick();
  TickVerifies();
}

void Coordinator::Wake() {
  absl::MutexLock l(&run_mu_);
  wake_ = true;
}

absl::StatusOr<uint64_t> Coordinator::Mutate(const MutateFn& fn) {
  if (standby()) return absl::UnavailableError(StandbyRefusal(StandbyLeader()));
  absl::MutexLock w(&write_mu_);
  Change change;
  uint64_t epoch;
  {
    absl::ReaderMutexLock l(&mu_);
    MIROIR_RETURN_IF_ERROR(fn(state_, &change));
    epoch = state_.epoch;
  }
  if (change.empty()) return epoch;
  if (const Caller* caller = ScopedCaller::Current(); caller != nullptr) {
    StampAudit(*caller, clock_->NowMs(), &change);
  }
  const uint64_t new_epoch = change.bump_epoch ? epoch + 1 : epoch;
  MIROIR_RETURN_IF_ERROR(store_->Commit(change.ToWrite(new_epoch)));
  std::vector<std::pair<uint64_t, std::string>> cancels;
  bool exclusions_changed = false;
  {
    absl::MutexLock l(&mu_);
    for (uint64_t id : change.deleted_tasks) {
      auto it = state_.tasks.find(id);
      if (it != state_.tasks.end() && it->second.status == TaskRecord::Status::kLeased) {
        cancels.push_back({id, it->second.worker});
      }
    }
    ApplyChange(change, new_epoch, &state_);
    if (change.bump_epoch) view_ = BuildView(state_);
    if (!change.tasks.empty() || !change.deleted_tasks.empty()) {
      exclusions_changed = RefreshReadExclusions();
    }
  }
  if (change.bump_epoch) Publish();
  // Still under write_mu_: lists go out in version order.
  if (exclusions_changed) registry_.Broadcast(ReadExclusionsMessage(0));
  // A task dropped while a worker holds it (abort, state left) is cancelled there.
  for (const auto& [id, worker] : cancels) {
    v1::CoordinatorMessage msg;
    msg.mutable_cancel()->set_task_id(id);
    msg.mutable_cancel()->set_reason("the move left the state this task served");
    registry_.Send(worker, msg);
  }
  if (!change.plans.empty() || !change.moves.empty() || !change.events.empty() ||
      !change.reshards.empty()) {
    NotifyChange();
  }
  return new_epoch;
}

void Coordinator::Publish() {
  v1::CoordinatorMessage msg;
  {
    absl::ReaderMutexLock l(&mu_);
    *msg.mutable_view() = *view_;
  }
  msg.mutable_view()->set_term(store_->LeaderTerm());
  registry_.Broadcast(msg);
}

bool Coordinator::RefreshReadExclusions() {
  std::vector<v1::ReadExclusion> now = PendingReadExclusions(state_.tasks);
  if (SameReadExclusions(read_exclusions_.exclusions(), now)) return false;
  read_exclusions_.clear_exclusions();
  for (auto& e : now) *read_exclusions_.add_exclusions() = std::move(e);
  read_exclusions_.set_version(read_exclusions_.version() + 1);
  return true;
}

v1::CoordinatorMessage Coordinator::ReadExclusionsMessage(uint64_t misses_through) {
  v1::CoordinatorMessage msg;
  {
    absl::ReaderMutexLock l(&mu_);
    *msg.mutable_read_exclusions() = read_exclusions_;
  }
  msg.mutable_read_exclusions()->set_misses_through(misses_through);
  return msg;
}

void Coordinator::NotifyChange() {
  absl::MutexLock l(&change_mu_);
  ++change_counter_;
}

uint64_t Coordinator::ChangeCounter() {
  absl::MutexLock l(&change_mu_);
  return change_counter_;
}

uint64_t Coordinator::WaitForChange(uint64_t seen, absl::Duration timeout) {
  absl::MutexLock l(&change_mu_);
  struct Arg {
    Coordinator* c;
    uint64_t seen;
  } arg{this, seen};
  change_mu_.AwaitWithTimeout(
      absl::Condition(
          +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS { return a->c->change_counter_ != a->seen; },
          &arg),
      timeout);
  return change_counter_;
}

std::shared_ptr<const v1::ClusterView> Coordinator::View() {
  absl::ReaderMutexLock l(&mu_);
  return view_;
}

// ---------------------------------------------------------------- operator API

absl::StatusOr<uint64_t> Coordinator::InitCluster(const std::string& fleet_yaml,
                                                  const std::string& source) {
  MIROIR_ASSIGN_OR_RETURN(FleetSpec spec,
                          ParseFleetSpec(fleet_yaml, source.empty() ? "fleet" : source));
  return Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
    if (s.initialized) return absl::AlreadyExistsError("cluster is already initialised");
    std::vector<std::string> order;
    std::vector<GroupNodes> groups;
    for (const auto& g : spec.groups) {
      order.push_back(g.id);
      GroupNodes gn{g.id, {}};
      for (const auto& n : g.nodes) {
        v1::Node node;
        node.set_id(n.id);
        node.set_group(g.id);
        node.set_address(n.address);
        node.set_store(n.store);
        node.set_status(v1::NODE_ACTIVE);
        c->nodes[n.id] = node;
        gn.nodes.push_back(n.id);
      }
      groups.push_back(std::move(gn));
    }
    c->group_order = order;
    c->initialized = true;
    c->cluster_name = config_.cluster_name;
    for (const auto& ix : spec.indexes) {
      const uint64_t gen = c->AllocId(s);
      v1::Index index;
      index.set_name(ix.name);
      index.set_shards(ix.shards);
      index.set_rf(ix.rf);
      index.set_live_generation(gen);
      v1::Generation* g = index.add_generations();
      g->set_id(gen);
      g->set_shards(ix.shards);
      g->set_role(v1::GENERATION_LIVE);
      c->indexes[ix.name] = index;
      v1::GenerationRoute route = BuildInitialRoute(ix.name, gen, ix.shards, ix.rf, groups);
      for (const auto& r : route.routes()) c->routes[{gen, r.shard()}] = r;
      route.clear_routes();
      c->generations[gen] = route;
    }
    c->bump_epoch = true;
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::CreateIndexResponse> Coordinator::CreateIndex(const std::string& name,
                                                                 uint32_t shards, uint32_t rf) {
  MIROIR_RETURN_IF_ERROR(ValidateIndexName("name", name));
  MIROIR_RETURN_IF_ERROR(ValidateShards("shards", shards));
  if (rf < 1) return absl::InvalidArgumentError("rf: must be at least 1");
  v1::Index created;
  MIROIR_ASSIGN_OR_RETURN(
      uint64_t epoch, Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
        if (!s.initialized) {
          return absl::FailedPreconditionError("cluster is not initialised (run cluster init)");
        }
        if (s.indexes.count(name) || s.aliases.count(name)) {
          return absl::AlreadyExistsError(absl::StrCat("name: index '", name, "' already exists"));
        }
        std::vector<GroupNodes> groups = s.RoutingGroups();
        for (const auto& g : groups) {
          if (g.nodes.size() < rf) {
            return absl::InvalidArgumentError(absl::StrCat("rf: ", rf, " is larger than group ",
                                                           g.group, " (", g.nodes.size(),
                                                           " active nodes)"));
          }
        }
        const uint64_t gen = c->AllocId(s);
        created.set_name(name);
        created.set_shards(shards);
        created.set_rf(rf);
        created.set_live_generation(gen);
        v1::Generation* g = created.add_generations();
        g->set_id(gen);
        g->set_shards(shards);
        g->set_role(v1::GENERATION_LIVE);
        c->indexes[name] = created;
        v1::GenerationRoute route = BuildInitialRoute(name, gen, shards, rf, groups);
        for (const auto& r : route.routes()) c->routes[{gen, r.shard()}] = r;
        route.clear_routes();
        c->generations[gen] = route;
        c->bump_epoch = true;
        return absl::OkStatus();
      }));
  v1::CreateIndexResponse resp;
  *resp.mutable_index() = created;
  resp.set_epoch(epoch);
  return resp;
}

namespace {

// `index` with `alias` dropped from its alias list (moved or removed).
v1::Index WithoutAlias(v1::Index index, const std::string& alias) {
  auto* a = index.mutable_aliases();
  a->erase(std::remove(a->begin(), a->end(), alias), a->end());
  return index;
}

}  // namespace

absl::StatusOr<uint64_t> Coordinator::SetAlias(const std::string& alias, const std::string& index) {
  MIROIR_RETURN_IF_ERROR(ValidateIndexName("alias", alias));
  MIROIR_RETURN_IF_ERROR(ValidateIndexName("index", index));
  return Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
    auto it = s.indexes.find(index);
    if (it == s.indexes.end()) {
      return absl::NotFoundError(absl::StrCat("index: unknown index '", index, "'"));
    }
    if (s.indexes.count(alias)) {
      return absl::AlreadyExistsError(absl::StrCat("alias: '", alias, "' is the name of an index"));
    }
    auto old = s.aliases.find(alias);
    if (old != s.aliases.end() && old->second != index) {
      c->indexes[old->second] = WithoutAlias(s.indexes.at(old->second), alias);
    }
    v1::Index target = it->second;
    if (std::find(target.aliases().begin(), target.aliases().end(), alias) ==
        target.aliases().end()) {
      target.add_aliases(alias);
    }
    c->indexes[index] = target;
    c->aliases[alias] = index;
    c->bump_epoch = true;
    return absl::OkStatus();
  });
}

absl::StatusOr<uint64_t> Coordinator::RemoveAlias(const std::string& alias) {
  MIROIR_RETURN_IF_ERROR(ValidateIndexName("alias", alias));
  return Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
    auto it = s.aliases.find(alias);
    if (it == s.aliases.end()) {
      return absl::NotFoundError(absl::StrCat("alias: unknown alias '", alias, "'"));
    }
    c->indexes[it->second] = WithoutAlias(s.indexes.at(it->second), alias);
    c->aliases[alias] = "";  // deletes it
    c->bump_epoch = true;
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::MarkNodeFailedResponse> Coordinator::MarkNodeFailed(const std::string& id) {
  MIROIR_RETURN_IF_ERROR(ValidateId("id", id));
  v1::Node node;
  const int64_t now = clock_->NowMs();
  MIROIR_ASSIGN_OR_RETURN(
      uint64_t epoch, Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
        auto it = s.nodes.find(id);
        if (it == s.nodes.end())
          return absl::NotFoundError(absl::StrCat("id: unknown node '", id, "'"));
        if (it->second.status() == v1::NODE_FAILED) {
          return absl::FailedPreconditionError(
              absl::StrCat("id: node '", id, "' is already marked failed"));
        }
        if (it->second.status() == v1::NODE_REMOVED) {
          return absl::FailedPreconditionError(absl::StrCat("id: node '", id, "' was removed"));
        }
        node = AsFailed(it->second);
        c->nodes[id] = node;
        std::set<std::string> failed = s.FailedNodes();
        failed.insert(id);
        for (const auto& [gen_id, gen] : s.generations) {
          for (const auto& route : gen.routes()) {
            bool touches = false;
            for (const auto& ws : WriteSet(route)) {
              for (const auto& n : ws.nodes()) touches = touches || n == id;
            }
            if (!touches) continue;
            // Fence the node's shards at the new epoch where it still answers, so a
            // worker that has not seen this epoch can no longer write there (§9a;
            // best effort: the worker lease bounds a writer no fence reaches).
            v1::Task fence = NodeFailureFence(s, c, gen, route.shard(), id);
            c->tasks[fence.id()] = fence;
            v1::ShardRoute r = route;
            std::vector<const v1::Move*> moves;
            for (const auto& [mid, m] : s.moves) {
              if (m.generation() == gen_id && m.shard() == route.shard() &&
                  !MoveMachine::IsTerminal(m.state())) {
                moves.push_back(&m);
              }
            }
            RecomputeShardRoute(&r, moves, failed, s.group_order,
                                route.pause_deadline_ms() ? route.pause_deadline_ms() : now);
            c->routes[{gen_id, route.shard()}] = r;
          }
        }
        c->bump_epoch = true;
        return absl::OkStatus();
      }));
  v1::MarkNodeFailedResponse resp;
  *resp.mutable_node() = node;
  resp.set_epoch(epoch);
  return resp;
}

absl::StatusOr<v1::ForgetNodeResponse> Coordinator::ForgetNode(const std::string& id) {
  MIROIR_RETURN_IF_ERROR(ValidateId("id", id));
  v1::ForgetNodeResponse resp;
  MIROIR_RETURN_IF_ERROR(Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
                           MIROIR_ASSIGN_OR_RETURN(resp, coordinator::ForgetNode(s, id));
                           c->nodes[id] = resp.node();
                           return absl::OkStatus();
                         }).status());
  spdlog::warn("node {} forgotten: its tombstones no longer hold back purges; possible loss: {}",
               id, resp.possible_loss());
  return resp;
}

absl::StatusOr<v1::Plan> Coordinator::CreatePlan(const v1::CreatePlanRequest& req) {
  const CoordinatorConfig config = this->config();  // a reload may change live keys
  PlanRequest pr;
  pr.kind = req.kind();
  pr.node_id = req.node_id();
  pr.group = req.group();
  pr.address = req.address();
  pr.store = req.store();
  pr.nodes.assign(req.nodes().begin(), req.nodes().end());
  pr.throttle_docs_per_s =
      req.throttle_docs_per_s() ? req.throttle_docs_per_s() : config.migration.throttle_docs_per_s;
  const bool skip = req.skip_delta_pass() || config.migration.skip_delta_pass;
  MIROIR_ASSIGN_OR_RETURN(std::vector<TimeWindow> windows,
                          PlanWindows(req.schedule_window(), config));
  const int64_t now = clock_->NowMs();
  std::map<std::string, NodeHealth> health;
  PlanDraft draft;
  {
    absl::ReaderMutexLock l(&mu_);
    health = health_;
    MIROIR_ASSIGN_OR_RETURN(draft, PlanChange(state_, pr, health));
  }
  v1::Plan& plan = draft.plan;
  plan.set_force(req.force());
  plan.set_skip_delta_pass(skip);
  plan.set_schedule_window(req.schedule_window());
  plan.set_created_ms(now);
  plan.set_state(v1::PLAN_RUNNING);
  MIROIR_RETURN_IF_ERROR(CheckDeltaSkipGate(skip, config));
  if (req.force() && !InsideAnyWindow(windows, now)) {
    plan.add_warnings(
        absl::StrCat("forced outside the schedule window (now ", UtcHourMinute(now), " UTC)"));
  }
  // Pre-flight: every new node's address must answer now, not in prepare.
  MIROIR_RETURN_IF_ERROR(ProbeNewNodes(draft.nodes));
  std::vector<v1::Move> moves(plan.moves().begin(), plan.moves().end());
  // The gates that read the state; a dry run evaluates them too, so a clean
  // preview is not refused when run for real.
  auto state_gates = [&](const ClusterState& s) -> absl::Status {
    MIROIR_RETURN_IF_ERROR(CheckConflictGate(moves, plan.kind(), s));
    return CheckTargetHealthGate(moves, s, health,
                                 plan.kind() == v1::PLAN_REJOIN ? plan.node_id() : "");
  };
  if (req.dry_run()) {
    // The window gate is reported as a warning (a preview may be made outside
    // the window); every other gate refuses as the real run would. Saves nothing.
    if (auto st = CheckWindowGate(windows, now, req.force()); !st.ok()) {
      plan.add_warnings(std::string(st.message()));
    }
    MIROIR_RETURN_IF_ERROR(CheckCapacityGate(moves, health));
    absl::ReaderMutexLock l(&mu_);
    MIROIR_RETURN_IF_ERROR(state_gates(state_));
    return plan;
  }
  MIROIR_RETURN_IF_ERROR(CheckWindowGate(windows, now, req.force()));
  MIROIR_RETURN_IF_ERROR(CheckCapacityGate(moves, health));
  v1::Plan saved;
  MIROIR_RETURN_IF_ERROR(Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
                           MIROIR_RETURN_IF_ERROR(state_gates(s));
                           saved = plan;
                           saved.set_id(c->AllocId(s));
                           saved.clear_moves();
                           for (v1::Move m : moves) {
                             m.set_id(c->AllocId(s));
                             m.set_plan_id(saved.id());
                             m.set_state_since_ms(now);
                             c->moves[m.id()] = m;
                             *saved.add_moves() = m;
                           }
                           c->plans[saved.id()] = saved;
                           for (const auto& n : draft.nodes) c->nodes[n.id()] = n;
                           if (!draft.group_order.empty()) c->group_order = draft.group_order;
                           // New nodes must be in the view before any route names them.
                           c->bump_epoch = !draft.nodes.empty();
                           c->events.push_back(PlanStateEvent(
                               saved.id(), v1::PLAN_STATE_UNSPECIFIED, v1::PLAN_RUNNING,
                               absl::StrCat("plan created: ", saved.description(), ", ",
                                            moves.size(), " moves", req.force() ? " (forced)" : ""),
                               now));
                           return absl::OkStatus();
                         }).status());
  if (req.force()) {
    spdlog::warn("plan {} created with force: the window gate is bypassed ({})", saved.id(),
                 saved.description());
  }
  spdlog::info("plan {} created: {} ({} moves)", saved.id(), saved.description(),
               saved.moves_size());
  return saved;
}

absl::Status Coordinator::ProbeNewNodes(const std::vector<v1::Node>& nodes) {
  if (!address_probe_) return absl::OkStatus();
  for (const auto& n : nodes) {
    if (n.status() != v1::NODE_JOINING) continue;  // only the nodes this plan adds
    if (auto st = address_probe_(n.address()); !st.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("plan refused: node ", n.id(), ": address ",
                                                        n.address(), " does not answer (",
                                                        st.message(), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::GetPlanResponse> Coordinator::PlanResponse(uint64_t id) {
  v1::GetPlanResponse resp;
  {
    absl::ReaderMutexLock l(&mu_);
    if (!state_.plans.count(id)) {
      return absl::NotFoundError(absl::StrCat("id: unknown plan ", id));
    }
    *resp.mutable_plan() = state_.PlanWithMoves(id);
    std::set<uint64_t> moves;
    for (const auto& m : resp.plan().moves()) moves.insert(m.id());
    for (const auto& [tid, t] : state_.tasks) {
      if (t.task.move_id() != 0 && moves.count(t.task.move_id())) {
        *resp.add_tasks() = PlanTaskOf(t);
      }
    }
  }
  MIROIR_ASSIGN_OR_RETURN(std::vector<std::string> events, store_->PlanEvents(id));
  for (const auto& e : events) resp.add_history()->ParseFromString(e);
  return resp;
}

absl::StatusOr<v1::GetPlanResponse> Coordinator::GetPlan(uint64_t id) {
  if (id == 0) return absl::InvalidArgumentError("id: plan id is required");
  return PlanResponse(id);
}

std::vector<v1::Plan> Coordinator::ListPlans() {
  absl::ReaderMutexLock l(&mu_);
  std::vector<v1::Plan> out;
  for (auto it = state_.plans.rbegin(); it != state_.plans.rend(); ++it) {
    out.push_back(state_.PlanWithMoves(it->first));
  }
  return out;
}

absl::StatusOr<v1::GetPlanResponse> Coordinator::SwitchPlanState(uint64_t id, v1::PlanState from,
                                                                 v1::PlanState to,
                                                                 const std::string& reason) {
  if (id == 0) return absl::InvalidArgumentError("id: plan id is required");
  const int64_t now = clock_->NowMs();
  MIROIR_RETURN_IF_ERROR(Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
                           auto it = s.plans.find(id);
                           if (it == s.plans.end()) {
                             return absl::NotFoundError(absl::StrCat("id: unknown plan ", id));
                           }
                           if (it->second.state() == to) return absl::OkStatus();
                           if (it->second.state() != from) {
                             return absl::FailedPreconditionError(absl::StrCat(
                                 "plan ", id, " is ", PlanStateName(it->second.state()), ", not ",
                                 PlanStateName(from)));
                           }
                           v1::Plan p = it->second;
                           p.set_state(to);
                           c->plans[id] = p;
                           c->events.push_back(PlanStateEvent(id, from, to, reason, now));
                           return absl::OkStatus();
                         }).status());
  return PlanResponse(id);
}

absl::StatusOr<v1::GetPlanResponse> Coordinator::PausePlan(uint64_t id) {
  return SwitchPlanState(id, v1::PLAN_RUNNING, v1::PLAN_PAUSED, "paused by operator");
}

absl::StatusOr<v1::GetPlanResponse> Coordinator::ResumePlan(uint64_t id) {
  return SwitchPlanState(id, v1::PLAN_PAUSED, v1::PLAN_RUNNING, "resumed by operator");
}

absl::StatusOr<v1::GetPlanResponse> Coordinator::AbortPlan(uint64_t id) {
  if (id == 0) return absl::InvalidArgumentError("id: plan id is required");
  const int64_t now = clock_->NowMs();
  MIROIR_RETURN_IF_ERROR(
      Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
        auto it = s.plans.find(id);
        if (it == s.plans.end()) return absl::NotFoundError(absl::StrCat("id: unknown plan ", id));
        const v1::PlanState ps = it->second.state();
        // A failed plan can still be aborted: its moves that failed before their
        // cutover hold partial copies on the joining nodes and keep their shards
        // mid-move (no other plan may touch them) until they are rolled back.
        bool rollback_left = ps != v1::PLAN_FAILED;
        for (const v1::Move* m : s.PlanMoves(id)) {
          rollback_left |= m->state() == v1::MOVE_FAILED && MoveMachine::CanAbort(*m);
        }
        if ((PlanEnded(ps) && ps != v1::PLAN_FAILED) || ps == v1::PLAN_ABORTING || !rollback_left) {
          return absl::FailedPreconditionError(absl::StrCat(
              "plan ", id, " is ", PlanStateName(ps), "; nothing to abort",
              rollback_left ? ""
                            : " (no move failed before its cutover; undo one past active "
                              "with a new plan)"));
        }
        v1::Plan p = it->second;
        p.set_state(v1::PLAN_ABORTING);
        p.set_ended_ms(0);
        c->plans[id] = p;
        v1::Event pe;
        pe.set_time_ms(now);
        pe.set_plan_id(id);
        pe.set_from(PlanStateName(ps));
        pe.set_to("aborting");
        pe.set_reason("aborted by operator");
        c->events.push_back(pe);
        // Moves before active roll back; later ones finish (rollback is a new move).
        for (const v1::Move* m : s.PlanMoves(id)) {
          if (!MoveMachine::CanAbort(*m)) continue;
          v1::Move copy = *m;
          if (copy.task_id() != 0) c->deleted_tasks.insert(copy.task_id());
          const v1::MoveState to =
              m->state() == v1::MOVE_PENDING ? v1::MOVE_ABORTED : v1::MOVE_ABORTING;
          MIROIR_ASSIGN_OR_RETURN(v1::Event e,
                                  MoveMachine::Transition(&copy, to, "plan aborted", now, 0));
          c->moves[copy.id()] = copy;
          c->events.push_back(e);
        }
        return absl::OkStatus();
      }).status());
  // The runner publishes the epoch that routes the shards back to their old owners.
  {
    absl::MutexLock l(&run_mu_);
    wake_ = true;
  }
  return PlanResponse(id);
}

void Coordinator::RecordAudit(std::string what) {
  const Caller* caller = ScopedCaller::Current();
  if (caller == nullptr || standby()) return;
  StateWrite w;
  w.audit.push_back(AuditRecord(*caller, clock_->NowMs(), std::move(what), 0).SerializeAsString());
  absl::MutexLock l(&write_mu_);
  if (absl::Status s = store_->Commit(w); !s.ok()) {
    spdlog::warn("audit record of {} by {} not stored: {}", caller->call, caller->actor,
                 s.ToString());
  }
}

v1::GetStatusResponse Coordinator::Status(const std::string& leader, uint32_t recent_actions) {
  v1::GetStatusResponse resp;
  resp.set_leader(leader);
  const int limit = static_cast<int>(recent_actions == 0 ? kDefaultRecentActions : recent_actions);
  auto audit = store_->RecentAudit(limit);
  if (audit.ok()) {
    for (const std::string& a : *audit) {
      if (!resp.add_recent_actions()->ParseFromString(a))
        resp.mutable_recent_actions()->RemoveLast();
    }
  } else {
    spdlog::warn("status: audit log unreadable: {}", audit.status().ToString());
  }
  resp.set_anti_entropy_enabled(config_.anti_entropy.enabled);
  resp.set_coordinator_version(BuildVersion());
  resp.set_state_backend(config_.state.backend);
  {
    absl::ReaderMutexLock l(&mu_);
    resp.set_epoch(state_.epoch);
    resp.set_initialized(state_.initialized);
    for (const auto& [id, n] : state_.nodes) {
      *resp.add_nodes() = WithReportedMemory(n);
      auto h = health_.find(id);
      if (h != health_.end()) {
        v1::NodeReachability* nh = resp.add_health();
        nh->set_node(id);
        nh->set_reachable(h->second.reachable);
      }
    }
    for (const auto& [id, p] : state_.plans) {
      if (!PlanEnded(p.state())) *resp.add_plans() = state_.PlanWithMoves(id);
    }
    uint64_t recovery = 0;
    for (const auto& [id, t] : state_.tasks) {
      if (IsRecoveryPass(t.task)) ++recovery;
    }
    resp.set_pending_recovery_passes(recovery);
    for (const auto& [name, ix] : state_.indexes) resp.add_indexes(name);
  }
  std::map<std::string, uint64_t> running;
  {
    absl::ReaderMutexLock l(&mu_);
    for (const auto& [id, t] : state_.tasks) {
      if (t.status == TaskRecord::Status::kLeased) ++running[t.worker];
    }
  }
  for (const WorkerSnapshot& w : registry_.Live()) {
    v1::WorkerInfo* info = resp.add_workers();
    info->set_id(w.id);
    info->set_address(w.address);
    info->set_lease_expires_ms(w.last_heartbeat_ms +
                               absl::ToInt64Milliseconds(registry_.lease_ttl()));
    info->set_acked_epoch(w.acked_epoch);
    info->set_inflight_writes(w.inflight_writes);
    info->set_running_tasks(running[w.id]);
    info->set_version(w.version);
  }
  return resp;
}

v1::Node Coordinator::WithReportedMemory(const v1::Node& n) const {
  v1::Node out = n;
  auto h = health_.find(n.id());
  if (h != health_.end()) {
    out.set_capacity_bytes(h->second.capacity_bytes);
    out.set_used_bytes(h->second.used_bytes);
  }
  return out;
}

std::vector<v1::Node> Coordinator::ListNodes() {
  absl::ReaderMutexLock l(&mu_);
  std::vector<v1::Node> out;
  for (const auto& g : state_.group_order) {
    for (const v1::Node* n : state_.GroupNodes(g)) out.push_back(WithReportedMemory(*n));
  }
  for (const auto& [id, n] : state_.nodes) {
    if (std::find(state_.group_order.begin(), state_.group_order.end(), n.group()) ==
        state_.group_order.end()) {
      out.push_back(WithReportedMemory(n));
    }
  }
  return out;
}

std::vector<v1::Index> Coordinator::ListIndexes() {
  absl::ReaderMutexLock l(&mu_);
  std::vector<v1::Index> out;
  for (const auto& [name, ix] : state_.indexes) out.push_back(ix);
  return out;
}

absl::StatusOr<v1::GetIndexResponse> Coordinator::GetIndex(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name: index name is required");
  absl::ReaderMutexLock l(&mu_);
  const v1::Index* ix = state_.FindIndex(name);
  if (!ix) return absl::NotFoundError(absl::StrCat("name: unknown index '", name, "'"));
  v1::GetIndexResponse resp;
  *resp.mutable_index() = *ix;
  for (const auto& g : ix->generations()) {
    auto it = state_.generations.find(g.id());
    if (it != state_.generations.end()) *resp.add_routes() = it->second;
  }
  resp.set_epoch(state_.epoch);
  return resp;
}

absl::StatusOr<v1::CheckWindowResponse> Coordinator::CheckWindow(const std::string& window) {
  MIROIR_ASSIGN_OR_RETURN(std::vector<TimeWindow> windows, PlanWindows(window, config_));
  const int64_t now = clock_->NowMs();
  v1::CheckWindowResponse resp;
  resp.set_inside(InsideAnyWindow(windows, now));
  resp.set_now_utc(UtcHourMinute(now));
  for (const auto& w : windows) resp.add_windows(w.Range());
  return resp;
}

// ---------------------------------------------------------------- worker API

absl::StatusOr<std::shared_ptr<Outbox>> Coordinator::RegisterWorker(const v1::Register& reg) {
  if (reg.worker_id().empty()) {
    return absl::InvalidArgumentError("register.worker_id: must not be empty");
  }
  // Recorded before it may write: if it dies with misses unreported, even across a
  // restart of this process, its shards get recovery passes.
  auto recorded = Mutate([&](const ClusterState& s, Change* c) {
    if (!s.worker_sessions.count(reg.worker_id())) c->opened_sessions.insert(reg.worker_id());
    return absl::OkStatus();
  });
  if (!recorded.ok()) return recorded.status();
  auto outbox = registry_.Register(reg.worker_id(), reg.address(), reg.max_tasks(), reg.version());
  v1::CoordinatorMessage ack;
  ack.mutable_register_ack()->set_lease_ttl_ms(absl::ToInt64Milliseconds(config_.worker_lease_ttl));
  ack.mutable_register_ack()->set_coordinator_id(absl::StrCat("coordinator-", started_ms_));
  ack.mutable_register_ack()->set_term(store_->LeaderTerm());
  outbox->Push(ack);
  v1::CoordinatorMessage view;
  *view.mutable_view() = *View();
  view.mutable_view()->set_term(store_->LeaderTerm());
  outbox->Push(view);
  // Every session starts with the list (a restarted process's `run` differs, so
  // it replaces the worker's held list whatever its version).
  outbox->Push(ReadExclusionsMessage(0));
  spdlog::info("worker {} registered from {} (max_tasks {}, version {})", reg.worker_id(),
               reg.address(), reg.max_tasks(), reg.version().empty() ? "unknown" : reg.version());
  return outbox;
}

void Coordinator::WorkerDisconnected(const std::string& worker,
                                     const std::shared_ptr<Outbox>& outbox) {
  registry_.Disconnect(worker, outbox);
  spdlog::info("worker {} session ended (lease runs out on its own)", worker);
}

void Coordinator::Heartbeat(const std::string& worker, const v1::Heartbeat& hb) {
  if (registry_.Heartbeat(worker, hb.inflight_writes(), hb.acked_epoch())) {
    v1::CoordinatorMessage ack;
    ack.mutable_heartbeat_ack()->set_lease_ttl_ms(
        absl::ToInt64Milliseconds(config_.worker_lease_ttl));
    registry_.Send(worker, ack);
  }
}

void Coordinator::RoutingAck(const std::string& worker, uint64_t epoch) {
  registry_.Ack(worker, epoch);
  // A move waiting for every live worker on an epoch (a cutover holding writes among
  // them) steps as soon as the last ack arrives, not at the next tick.
  absl::MutexLock l(&run_mu_);
  wake_ = true;
}

bool Coordinator::TaskProgress(const std::string& worker, const v1::TaskProgress& p) {
  bool stale = false;
  auto result = Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
    auto it = s.tasks.find(p.task_id());
    if (it == s.tasks.end() || it->second.status != TaskRecord::Status::kLeased ||
        it->second.worker != worker || it->second.task.lease_generation() != p.lease_generation()) {
      stale = true;
      return absl::FailedPreconditionError("stale lease generation");
    }
    v1::Task t = it->second.task;
    *t.mutable_checkpoint() = p.checkpoint();
    c->tasks[t.id()] = t;
    auto m = s.moves.find(t.move_id());
    if (m != s.moves.end() && t.kind() == v1::TASK_BACKFILL) {
      v1::Move move = m->second;
      move.set_documents_copied(p.checkpoint().documents());
      c->moves[move.id()] = move;
    }
    return absl::OkStatus();
  });
  if (!result.ok() && !stale) {
    // Not saved (etcd electing its leader, a commit that timed out): the lease is
    // still good, so the run goes on and a later checkpoint is saved. Refusing it
    // would stop a run whose task stays leased to this worker: nothing would
    // re-lease it, and its move would wait forever.
    spdlog::warn("checkpoint of task {} (lease {}) from {} not saved: {}; the run goes on",
                 p.task_id(), p.lease_generation(), worker, result.status().ToString());
  }
  return !stale;
}

void Coordinator::TaskComplete(const std::string& worker, const v1::TaskComplete& done) {
  {
    absl::MutexLock l(&mu_);
    auto it = state_.tasks.find(done.task_id());
    if (it == state_.tasks.end() || it->second.status != TaskRecord::Status::kLeased ||
        it->second.worker != worker ||
        it->second.task.lease_generation() != done.lease_generation()) {
      spdlog::info("ignoring completion of task {} gen {} from {} (stale)", done.task_id(),
                   done.lease_generation(), worker);
      return;
    }
    it->second.status = TaskRecord::Status::kDone;
    it->second.result = done.result();
  }
  absl::MutexLock l(&run_mu_);
  wake_ = true;
}

void Coordinator::TaskFailed(const std::string& worker, const v1::TaskFailed& f) {
  {
    absl::MutexLock l(&mu_);
    auto it = state_.tasks.find(f.task_id());
    if (it == state_.tasks.end() || it->second.status != TaskRecord::Status::kLeased ||
        it->second.worker != worker || it->second.task.lease_generation() != f.lease_generation()) {
      return;
    }
    it->second.status = TaskRecord::Status::kFailed;
    it->second.error = f.error();
    it->second.failure = f.reason();
    it->second.retryable = f.retryable();
    ++it->second.failures;
    it->second.retry_at_ms = clock_->NowMs() + TaskRecord::RetryDelayMs(it->second.failures);
    spdlog::warn("task {} ({}) failed on {}: {}{}", f.task_id(),
                 v1::TaskKind_Name(it->second.task.kind()), worker, f.error(),
                 f.retryable() ? " (retryable)" : "");
  }
  absl::MutexLock l(&run_mu_);
  wake_ = true;
}

absl::StatusOr<uint32_t> Coordinator::ReportMisses(const v1::MissReport& report) {
  uint32_t scheduled = 0;
  auto st = Mutate([&](const ClusterState& s, Change* c) {
    const auto batch = static_cast<uint32_t>(config_.migration.backfill_batch_size);
    scheduled = ScheduleMissPasses(s, report, batch, c);
    if (report.stopping() && s.worker_sessions.count(report.worker_id())) {
      c->closed_sessions.insert(report.worker_id());
    }
    return absl::OkStatus();
  });
  MIROIR_RETURN_IF_ERROR(st.status());
  if (scheduled > 0) {
    spdlog::info("{} recovery passes scheduled for the misses {} reported", scheduled,
                 report.worker_id());
  }
  // A worker that stops says so once its last misses are in: its session then ends
  // clean, and its lease running out schedules nothing (ScheduleSessionEndPasses).
  if (report.stopping() && !report.worker_id().empty()) registry_.EndedClean(report.worker_id());
  return scheduled;
}

void Coordinator::ScheduleSessionEndPasses(const std::vector<std::string>& workers) {
  const auto batch = static_cast<uint32_t>(config_.migration.backfill_batch_size);
  uint32_t scheduled = 0;
  auto st = Mutate([&](const ClusterState& s, Change* c) {
    scheduled = ScheduleShardPasses(s, batch, c);
    for (const auto& w : workers) {
      if (s.worker_sessions.count(w)) c->closed_sessions.insert(w);
    }
    return absl::OkStatus();
  });
  if (!st.ok()) {
    spdlog::error("scheduling recovery passes after the session of {} ended: {}",
                  absl::StrJoin(workers, ","), std::string(st.status().message()));
    return;
  }
  spdlog::warn(
      "worker session of {} ended without its stopping miss report (crash or lapsed lease): {} "
      "recovery passes over every written shard scheduled",
      absl::StrJoin(workers, ","), scheduled);
}

void Coordinator::NodeReport(const v1::NodeReport& report) {
  bool changed = false;
  {
    absl::MutexLock l(&mu_);
    NodeHealth& h = health_[report.node()];
    h.reachable = report.reachable();
    if (!report.incarnation().empty()) h.incarnation = report.incarnation();
    h.shards.clear();
    h.total_bytes = 0;
    h.reported_ms = clock_->NowMs();
    if (report.reachable()) {
      h.capacity_bytes = report.capacity_bytes();
      h.used_bytes = report.used_bytes();
      h.store_config.clear();
      for (const auto& [key, value] : report.store_config()) h.store_config[key] = value;
    }
    for (const auto& st : report.shards()) {
      h.shards[{st.index(), st.generation(), st.shard()}] = {st.documents(), st.bytes()};
      h.total_bytes += st.bytes();
    }
    auto it = state_.nodes.find(report.node());
    changed = it != state_.nodes.end() && !report.incarnation().empty() &&
              it->second.incarnation() != report.incarnation();
  }
  if (!changed) return;
  // Every worker reports every node: two reports of one new incarnation arrive
  // within milliseconds. One at a time, each re-reading the node as the previous
  // one left it (its incarnation recorded, its status changed by the rejoin plan),
  // so a change is handled once: a second "marked failed" would take the joining
  // node out of its own rejoin's write sets.
  absl::MutexLock serial(&rejoin_mu_);
  std::string previous;
  v1::NodeStatus status = v1::NODE_STATUS_UNSPECIFIED;
  {
    absl::MutexLock l(&mu_);
    auto it = state_.nodes.find(report.node());
    if (it == state_.nodes.end() || it->second.incarnation() == report.incarnation()) return;
    previous = it->second.incarnation();
    status = it->second.status();
  }
  if (previous.empty()) {
    spdlog::info("node {} incarnation {}", report.node(), report.incarnation());
  } else if (!HandleIncarnationChange(report.node(), previous, report.incarnation(), status)) {
    return;  // not recorded: the next report retries
  }
  auto st = Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
    auto it = s.nodes.find(report.node());
    if (it == s.nodes.end()) return absl::OkStatus();
    v1::Node n = it->second;
    n.set_incarnation(report.incarnation());
    c->nodes[n.id()] = n;
    return absl::OkStatus();
  });
  if (!st.ok()) {
    spdlog::error("recording incarnation of {}: {}", report.node(),
                  std::string(st.status().message()));
  }
}

bool Coordinator::HandleIncarnationChange(const std::string& node, const std::string& previous,
                                          const std::string& current, v1::NodeStatus status) {
  if (!config().migration.auto_rejoin || status == v1::NODE_REMOVED) {
    spdlog::warn(
        "node {} changed incarnation {} -> {}: its data and fences are gone; mark it "
        "failed and rejoin it (migration.auto_rejoin is off)",
        node, previous, current);
    return true;
  }
  if (status == v1::NODE_JOINING || status == v1::NODE_LEAVING) {
    // A plan is moving shards to or from it; that plan decides. A leaving node's
    // copy restarts on the incarnation change (its W is void); a joining node's
    // moves re-read its incarnation by a fence before E3 and before cleanup's
    // first delete (back to prepare, or reconcile L into N), and it becomes active
    // with the incarnation they copied into (DESIGN §6). Retried at the next report.
    spdlog::warn("node {} changed incarnation {} -> {} while a plan moves it; not rejoining yet",
                 node, previous, current);
    return false;
  }
  if (status == v1::NODE_FAILED && !auto_failed_.contains(node)) {
    // Failed by the operator, who decides between rejoin and restore.
    spdlog::warn(
        "node {} (marked failed) changed incarnation {} -> {}; run "
        "`miroir-ctl plan rejoin --id {}` or `miroir-ctl plan restore --id {}`",
        node, previous, current, node, node);
    return true;
  }
  // Failed first: it leaves the write and acking sets (it holds nothing it claims).
  if (status == v1::NODE_ACTIVE) {
    auto failed = MarkNodeFailed(node);
    if (!failed.ok()) {
      spdlog::error("node {} changed incarnation: marking it failed: {}", node,
                    failed.status().ToString());
      return false;
    }
    spdlog::warn("node {} changed incarnation {} -> {}: marked failed (epoch {})", node, previous,
                 current, failed->epoch());
    auto_failed_.insert(node);
  }
  v1::CreatePlanRequest req;
  req.set_kind(v1::PLAN_REJOIN);
  req.set_node_id(node);
  auto plan = CreatePlan(req);
  if (!plan.ok()) {
    spdlog::warn(
        "node {} changed incarnation: rejoin plan not created yet ({}); retried at the "
        "next report, or run `miroir-ctl plan rejoin --id {}`",
        node, std::string(plan.status().message()), node);
    return false;
  }
  auto_failed_.erase(node);
  spdlog::warn("node {} changed incarnation {} -> {}: rejoin plan {} created ({} moves)", node,
               previous, current, plan->id(), plan->moves_size());
  return true;
}

}  // namespace miroir::coordinator
