// Coordinator: the control plane's core. Owns the ClusterState, commits every
// change to the StateStore before applying it in memory and publishing it, and
// exposes the operator and worker operations the gRPC services call.
//
// Locking: `write_mu_` serializes mutations (held across the store commit, which
// is the serialization point); `mu_` guards the in-memory state and is never held
// across a store call or an RPC. Messages to workers are queued on outboxes.
// Every public method is thread-safe.
#ifndef MIROIR_COORDINATOR_COORDINATOR_H_
#define MIROIR_COORDINATOR_COORDINATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "coordinator/cluster_check.h"
#include "coordinator/cluster_state.h"
#include "coordinator/config.h"
#include "coordinator/config_reload.h"
#include "coordinator/move_gates.h"
#include "coordinator/state_store.h"
#include "coordinator/step_io.h"
#include "coordinator/worker_registry.h"
#include "miroir/v1/coordinator.pb.h"
#include "miroir/v1/worker_control.pb.h"

namespace miroir::coordinator {

class PlanRunner;
class AntiEntropyRunner;
class ReshardRunner;

class Coordinator {
 public:
  // Loads the state from `store`. Tasks that were leased before a restart are
  // leased again (with a higher lease generation) once workers reconnect.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(CoordinatorConfig config,
                                                             std::unique_ptr<StateStore> store,
                                                             const Clock* clock);
  // A standby's read-only copy (etcd backend, DESIGN §9): loads the model and
  // serves reads; every mutation answers UNAVAILABLE naming `leader()` (which
  // must not block). Never Start()ed; ReloadFromStore keeps it fresh.
  static absl::StatusOr<std::unique_ptr<Coordinator>> CreateStandby(
      CoordinatorConfig config, std::unique_ptr<StateStore> store, const Clock* clock,
      std::function<std::string()> leader);
  bool standby() const { return standby_leader_ != nullptr; }
  // The leader a standby names ("" on a leader).
  std::string StandbyLeader() const { return standby_leader_ ? standby_leader_() : ""; }
  // Re-reads the whole model from the store (a standby following etcd).
  absl::Status ReloadFromStore() ABSL_LOCKS_EXCLUDED(mu_, write_mu_);
  ~Coordinator();

  // Starts / stops the plan runner thread (ticks every `tick`).
  void Start(absl::Duration tick = absl::Milliseconds(20));
  void Stop();

  // ---- Operator API (codes per DESIGN §11) ----
  absl::StatusOr<uint64_t> InitCluster(const std::string& fleet_yaml, const std::string& source);
  absl::StatusOr<v1::CreateIndexResponse> CreateIndex(const std::string& name, uint32_t shards,
                                                      uint32_t rf);
  absl::StatusOr<uint64_t> SetAlias(const std::string& alias, const std::string& index);
  // Marks a node failed at a new epoch, and fences its shards there where it still
  // answers (FENCE tasks; DESIGN §9a).
  absl::StatusOr<v1::MarkNodeFailedResponse> MarkNodeFailed(const std::string& id);
  // Forgets a failed node (node_rejoin.h ForgetNode).
  absl::StatusOr<v1::ForgetNodeResponse> ForgetNode(const std::string& id);
  absl::StatusOr<v1::Plan> CreatePlan(const v1::CreatePlanRequest& req);
  absl::StatusOr<v1::GetPlanResponse> GetPlan(uint64_t id);
  std::vector<v1::Plan> ListPlans();
  absl::StatusOr<v1::GetPlanResponse> PausePlan(uint64_t id);
  absl::StatusOr<v1::GetPlanResponse> ResumePlan(uint64_t id);
  absl::StatusOr<v1::GetPlanResponse> AbortPlan(uint64_t id);
  // Live controls (docs/operations.md): see the Coordinator service's UpdatePlan,
  // PauseAllPlans, ResumeAllPlans and CutoverPlan for the contracts.
  absl::StatusOr<v1::GetPlanResponse> UpdatePlan(const v1::UpdatePlanRequest& req);
  absl::StatusOr<v1::PlansChangedResponse> PauseAllPlans();
  absl::StatusOr<v1::PlansChangedResponse> ResumeAllPlans();
  absl::StatusOr<v1::GetPlanResponse> CutoverPlan(uint64_t id, bool force);
  // The running configuration (config_reload.h ConfigEntries).
  v1::GetConfigResponse GetConfig();
  // Re-reads the config through the loader main installed and applies its live
  // keys between two runner ticks (waits up to 10 s for that). INVALID_ARGUMENT
  // when it does not parse or validate (nothing applied); FAILED_PRECONDITION
  // without a loader (no --config).
  absl::StatusOr<v1::ReloadConfigResponse> ReloadConfig();
  using ConfigLoader = std::function<absl::StatusOr<CoordinatorConfig>()>;
  // REQUIRES: called before the operator API serves. `source` names the file.
  void set_config_loader(ConfigLoader loader, std::string source) {
    config_loader_ = std::move(loader);
    config_source_ = std::move(source);
  }
  // A consistent copy of the state into `path` (StateStore::BackupTo); returns
  // the epoch at the copy.
  absl::StatusOr<uint64_t> BackupTo(const std::string& path);
  // `recent_actions`: audit records to include, newest first (0:
  // kDefaultRecentActions). REQUIRES: at most kMaxRecentActions (the service
  // refuses more: INVALID_ARGUMENT).
  static constexpr uint32_t kDefaultRecentActions = 10;
  static constexpr uint32_t kMaxRecentActions = 1000;
  // Records an accepted call that changes no state (a reload, a backup) in the
  // audit log, when the calling thread serves one (ScopedCaller).
  void RecordAudit(std::string what) ABSL_LOCKS_EXCLUDED(write_mu_);
  v1::GetStatusResponse Status(const std::string& leader, uint32_t recent_actions = 0);
  std::vector<v1::Node> ListNodes();
  std::vector<v1::Index> ListIndexes();
  absl::StatusOr<v1::GetIndexResponse> GetIndex(const std::string& name);
  absl::StatusOr<v1::CheckWindowResponse> CheckWindow(const std::string& window);
  // StartVerify with `timeout`, then waits for the operation to end: its
  // verdicts when done, UNAVAILABLE when it did not finish (coordinator/verify.cc).
  absl::StatusOr<v1::VerifyResponse> Verify(const std::string& index, absl::Duration timeout);
  // A tracked verify operation (coordinator/verify_ops.h): one VERIFY task per
  // shard of the index's live generation; returns at once. INVALID_ARGUMENT empty
  // index or negative timeout (0: one hour); NOT_FOUND unknown index;
  // UNAVAILABLE no live worker. Nothing is saved on an error.
  absl::StatusOr<v1::VerifyOperation> StartVerify(const std::string& index, absl::Duration timeout);
  // One operation (NOT_FOUND unknown id), or the newest 20 (id 0).
  absl::StatusOr<v1::GetVerifyResponse> GetVerify(uint64_t id);
  // Removes an alias (NOT_FOUND unknown alias); returns the epoch publishing it.
  absl::StatusOr<uint64_t> RemoveAlias(const std::string& alias);
  // The fleet check of `miroir-ctl check` (coordinator/cluster_check.h), from the
  // state and the workers' last node reports; never blocks on a worker or store.
  v1::CheckClusterResponse CheckCluster();
  // What CheckCluster judges (and the metrics export): every node, plan with
  // moves, reshard, generation, live worker, node report and pending recovery
  // pass per node, at one instant.
  ClusterCheckInput FleetSnapshot();
  // Blocks until the plan-change counter passes `seen` or `timeout`; returns it.
  uint64_t WaitForChange(uint64_t seen, absl::Duration timeout);
  uint64_t ChangeCounter();

  // ---- Worker API ----
  // Registers a session; returns its outbox, already holding register_ack + view.
  absl::StatusOr<std::shared_ptr<Outbox>> RegisterWorker(const v1::Register& reg);
  void WorkerDisconnected(const std::string& worker, const std::shared_ptr<Outbox>& outbox);
  void Heartbeat(const std::string& worker, const v1::Heartbeat& hb);
  void RoutingAck(const std::string& worker, uint64_t epoch);
  // Saves the checkpoint. False when the lease generation is stale (the worker
  // must stop that run); true also when the commit failed (the run goes on).
  bool TaskProgress(const std::string& worker, const v1::TaskProgress& p);
  void TaskComplete(const std::string& worker, const v1::TaskComplete& c);
  void TaskFailed(const std::string& worker, const v1::TaskFailed& f);
  // Schedules a recovery pass per (node, shard) missed (coordinator/recovery_passes.h);
  // returns how many were new. A `stopping` report marks the worker's session as ended
  // clean (nothing left unreported).
  absl::StatusOr<uint32_t> ReportMisses(const v1::MissReport& report);
  // The sessions of `workers` ended without their final miss report (a crash, a
  // lapsed lease, a worker that did not come back after a restart of this
  // process): misses may be lost, so every written shard gets a shard pass, and
  // their sessions are forgotten.
  void ScheduleSessionEndPasses(const std::vector<std::string>& workers);
  // Records a node's health and stats. When its incarnation changed (its data and
  // fences are gone) and migration.auto_rejoin is on, marks it failed and creates a
  // rejoin plan (DESIGN §6); if that is refused now, the next report retries.
  void NodeReport(const v1::NodeReport& report);
  std::shared_ptr<const v1::ClusterView> View();
  // The current read-exclusion list (DESIGN §4 "Reads"; pending recovery passes)
  // with `misses_through` set: what a session sends in answer to miss report
  // `misses_through` (0: none).
  v1::CoordinatorMessage ReadExclusionsMessage(uint64_t misses_through);

  // Pre-flight of plans that add nodes: OK when `address` (HOST:PORT) answers.
  using AddressProbe = std::function<absl::Status(const std::string& address)>;
  // Installs the probe CreatePlan runs on every node a plan adds (none: no
  // pre-flight). REQUIRES: called before the operator API serves.
  void set_address_probe(AddressProbe probe) { address_probe_ = std::move(probe); }

  // A copy of the running configuration (live keys may change on reload).
  CoordinatorConfig config() const ABSL_LOCKS_EXCLUDED(mu_);
  WorkerRegistry& workers() { return registry_; }
  const Clock* clock() const { return clock_; }

  // Runs one runner step now (tests drive it by hand with a ManualClock).
  void TickForTest();
  // Makes the runner thread step now instead of at its next tick.
  void Wake();
  // Anti-entropy runs (the AntiEntropy service).
  AntiEntropyRunner& anti_entropy() { return *ae_; }
  // Reshards (the Reshard service).
  ReshardRunner& reshard() { return *reshard_; }

 private:
  friend class PlanRunner;
  friend class AntiEntropyRunner;
  friend class ReshardRunner;
  // The model loaded from `store` (refused when recorded for another
  // cluster_name), in a coordinator that is not started; a standby when
  // `standby_leader` is set. Create and CreateStandby go on from here.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Open(
      CoordinatorConfig config, std::unique_ptr<StateStore> store, const Clock* clock,
      std::function<std::string()> standby_leader);
  void MakeRunners();
  Coordinator(CoordinatorConfig config, std::unique_ptr<StateStore> store, const Clock* clock);

  using MutateFn = std::function<absl::Status(const ClusterState&, Change*)>;
  // Builds a change from the current state, commits it, applies it, publishes a
  // new view when the epoch moved. Returns the epoch after it. `fn` runs with
  // write_mu_ held and mu_ held shared: a lambda reading other members guarded by
  // mu_ (health_) says so with ABSL_SHARED_LOCKS_REQUIRED(c_->mu_), which the
  // analysis then checks inside it (it cannot see through std::function).
  absl::StatusOr<uint64_t> Mutate(const MutateFn& fn) ABSL_LOCKS_EXCLUDED(mu_, write_mu_);
  void Publish() ABSL_LOCKS_EXCLUDED(mu_);
  // Re-derives read_exclusions_ from the tasks; true when its entries changed
  // (the version was raised).
  bool RefreshReadExclusions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyChange();
  absl::StatusOr<v1::GetPlanResponse> PlanResponse(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // FAILED_PRECONDITION naming the node and address when a joining node of
  // `nodes` does not answer address_probe_.
  absl::Status ProbeNewNodes(const std::vector<v1::Node>& nodes);
  // Moves plan `id` from state `from` to `to` with an event; a plan already in `to`
  // is left as is; any other state is FAILED_PRECONDITION.
  absl::StatusOr<v1::GetPlanResponse> SwitchPlanState(uint64_t id, v1::PlanState from,
                                                      v1::PlanState to, const std::string& reason)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RunLoop(absl::Duration tick);
  // Settles the running verify operations' finished tasks (runner thread).
  void TickVerifies() ABSL_LOCKS_EXCLUDED(mu_, write_mu_);
  // What the steppers take from the world now: the clock, whether acks may be
  // trusted yet (one lease TTL plus max_clock_drift since the start: a worker
  // that acked an older view before a restart has expired or acked again), and
  // the registry's "every live worker acked epoch E".
  StepInput StepInputNow();
  // The earliest MoveMachine::NextCutoverDeadlineMs of every move and reshard (0:
  // none): the run loop wakes then.
  int64_t NextCutoverDeadlineMs() ABSL_LOCKS_EXCLUDED(mu_);
  // Applies a reload handed over by ReloadConfig; runner thread (or inline when
  // the runner is not started), between ticks.
  void ApplyPendingConfig() ABSL_LOCKS_EXCLUDED(run_mu_, write_mu_, mu_);
  // Sets plan `id`'s state to `to` with an event, for every plan in `from`.
  absl::StatusOr<v1::PlansChangedResponse> SwitchAllPlans(v1::PlanState from, v1::PlanState to,
                                                          const std::string& reason);
  // `n` with the memory its last node report gave (capacity gate inputs).
  v1::Node WithReportedMemory(const v1::Node& n) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Fails and rejoins a node whose incarnation changed (NodeReport). Returns true
  // when the new incarnation may be recorded, false to retry at the next report.
  bool HandleIncarnationChange(const std::string& node, const std::string& previous,
                               const std::string& current, v1::NodeStatus status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(rejoin_mu_) ABSL_LOCKS_EXCLUDED(mu_);

  // Written only by ApplyPendingConfig (live keys, config_reload.h), which holds
  // write_mu_ and mu_ on the runner thread between ticks: the runners and the
  // Mutate functions read it as they always did; other threads read it under mu_
  // or through config().
  CoordinatorConfig config_;
  ConfigLoader config_loader_;  // set before serving, then read only
  std::string config_source_;
  absl::Mutex reload_mu_;  // one reload at a time
  int64_t config_loaded_ms_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t reloads_ ABSL_GUARDED_BY(mu_) = 0;
  const std::unique_ptr<StateStore> store_;
  const Clock* const clock_;
  const int64_t started_ms_;
  AddressProbe address_probe_;  // set before serving, then read only
  // Worker sessions recorded before this process started: once the restart's
  // grace has passed, those whose worker did not register again ended unclean.
  // Checked once, then cleared (runner thread only after Create).
  std::set<std::string> sessions_before_start_;
  WorkerRegistry registry_;
  std::unique_ptr<PlanRunner> runner_;
  std::unique_ptr<AntiEntropyRunner> ae_;
  std::unique_ptr<ReshardRunner> reshard_;

  absl::Mutex rejoin_mu_ ABSL_ACQUIRED_BEFORE(write_mu_);  // serialises incarnation changes
  // Nodes failed because their incarnation changed, whose rejoin plan is not created yet.
  absl::flat_hash_set<std::string> auto_failed_ ABSL_GUARDED_BY(rejoin_mu_);
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  ClusterState state_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const v1::ClusterView> view_ ABSL_GUARDED_BY(mu_);
  std::function<std::string()> standby_leader_;  // set: a standby (CreateStandby)
  // Derived from state_.tasks after every change of them; its version increases
  // with every change of its entries (read_exclusions.h).
  v1::ReadExclusions read_exclusions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, NodeHealth> health_ ABSL_GUARDED_BY(mu_);

  absl::Mutex change_mu_;
  uint64_t change_counter_ ABSL_GUARDED_BY(change_mu_) = 0;

  absl::Mutex run_mu_;
  bool stopping_ ABSL_GUARDED_BY(run_mu_) = false;
  bool wake_ ABSL_GUARDED_BY(run_mu_) = false;
  std::optional<CoordinatorConfig> pending_config_ ABSL_GUARDED_BY(run_mu_);
  uint64_t configs_applied_ ABSL_GUARDED_BY(run_mu_) = 0;
  std::thread runner_thread_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_COORDINATOR_H_
