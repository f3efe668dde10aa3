// ClusterState: the coordinator's in-memory model (topology, indexes, routing
// tables, plans, moves, tasks) and Change, one atomic modification of it.
// A Change is turned into one StateWrite (committed first) and then applied to
// memory; nothing is published before the commit. Pure data, no locking: the
// Coordinator guards its instance.
#ifndef MIROIR_COORDINATOR_CLUSTER_STATE_H_
#define MIROIR_COORDINATOR_CLUSTER_STATE_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/routing.h"
#include "coordinator/state_store.h"
#include "miroir/v1/anti_entropy.pb.h"
#include "miroir/v1/coordinator.pb.h"
#include "miroir/v1/reshard.pb.h"
#include "miroir/v1/types.pb.h"
#include "miroir/v1/worker_control.pb.h"

namespace miroir::coordinator {

namespace v1 = ::miroir::v1;

// A task with its runtime status (status, holder, result are memory only: a task
// that was running when the coordinator stopped is leased again after a restart).
struct TaskRecord {
  enum class Status { kPending, kLeased, kDone, kFailed };
  v1::Task task;
  Status status = Status::kPending;
  std::string worker;  // holder while leased
  v1::TaskResult result;
  std::string error;                                       // for people
  v1::TaskFailure failure = v1::TASK_FAILURE_UNSPECIFIED;  // what the steppers act on
  bool retryable = false;
  uint32_t failures = 0;
  int64_t retry_at_ms = 0;  // a retryable failure is leased again from then (backoff)

  // Failed and will not be leased again: not retryable, or out of retries.
  bool FailedForGood(uint64_t task_retries) const {
    return status == Status::kFailed && (!retryable || failures > task_retries);
  }
  // Backoff after the n-th retryable failure: 100 ms doubling, at most 5 s.
  static int64_t RetryDelayMs(uint32_t failures) {
    const uint32_t n = failures == 0 ? 0 : std::min<uint32_t>(failures - 1, 6);
    return std::min<int64_t>(int64_t{100} << n, 5000);
  }
};

struct ClusterState {
  uint64_t epoch = 0;
  bool initialized = false;
  std::string cluster_name;  // meta cluster_name: recorded at init ("" before, or an older model)
  uint64_t next_id = 1;      // plans, moves, tasks and generations share one id space
  std::vector<std::string> group_order;
  std::map<std::string, v1::Node> nodes;
  std::map<std::string, v1::Index> indexes;
  std::map<uint64_t, v1::GenerationRoute> generations;  // routes filled, index = shard
  std::map<std::string, std::string> aliases;           // alias -> index
  std::map<uint64_t, v1::Plan> plans;                   // moves not filled
  std::map<uint64_t, v1::Move> moves;
  std::map<uint64_t, TaskRecord> tasks;
  // Anti-entropy (docs/anti-entropy.md): last pass per shard ("index/gen/shard"),
  // runs by id, when the next scheduled round starts and where it resumes.
  std::map<std::string, v1::ShardPass> ae_passes;
  std::map<uint64_t, v1::AntiEntropyRun> ae_runs;
  int64_t ae_next_round_ms = 0;
  std::string ae_rotation_index;
  uint32_t ae_rotation_shard = 0;
  // Reshards (DESIGN §7, docs/resharding.md) by id, every state.
  std::map<uint64_t, v1::ReshardRecord> reshards;
  // Verify operations (coordinator/verify.h) by id, every state.
  std::map<uint64_t, v1::VerifyOperation> verifies;
  // Workers whose session has not ended clean (no `stopping` miss report yet):
  // one that is gone, even across a restart, gets a recovery pass of every
  // written shard (DESIGN §4).
  std::set<std::string> worker_sessions;

  // Rebuilds from what the store loaded.
  static absl::StatusOr<ClusterState> FromLoaded(const LoadedState& loaded);

  // Active nodes of every group, in group order: what a new routing table places
  // owners on (CreateIndex, a reshard's shadow).
  std::vector<miroir::GroupNodes> RoutingGroups() const;
  // Nodes of a group (every status), in id order.
  std::vector<const v1::Node*> GroupNodes(const std::string& group) const;
  // The index an index name or alias names, or nullptr.
  const v1::Index* FindIndex(const std::string& name_or_alias) const;
  // Moves of a plan, by id.
  std::vector<const v1::Move*> PlanMoves(uint64_t plan_id) const;
  // The plan with its moves filled in.
  v1::Plan PlanWithMoves(uint64_t plan_id) const;
  // Every node currently marked failed.
  std::set<std::string> FailedNodes() const;
};

// One atomic modification. Objects are whole new values.
struct Change {
  bool bump_epoch = false;
  std::optional<bool> initialized;
  std::optional<std::string> cluster_name;
  std::optional<std::vector<std::string>> group_order;
  std::map<std::string, v1::Node> nodes;
  std::map<std::string, v1::Index> indexes;
  std::map<uint64_t, v1::GenerationRoute> generations;  // metadata; routes ignored
  std::map<std::pair<uint64_t, uint32_t>, v1::ShardRoute> routes;
  std::map<std::string, std::string> aliases;
  std::map<uint64_t, v1::Plan> plans;  // moves ignored
  std::map<uint64_t, v1::Move> moves;
  std::map<uint64_t, v1::Task> tasks;  // created or updated (checkpoint, lease generation)
  std::set<uint64_t> deleted_tasks;
  std::vector<v1::Event> events;
  std::vector<v1::Event> audit;  // audit records (coordinator/audit.h); not counted by empty()
  uint64_t next_id = 0;          // 0: unchanged
  std::map<std::string, v1::ShardPass> ae_passes;
  std::map<uint64_t, v1::AntiEntropyRun> ae_runs;
  std::set<uint64_t> deleted_ae_runs;
  std::optional<int64_t> ae_next_round_ms;
  std::optional<std::pair<std::string, uint32_t>> ae_rotation;
  std::map<uint64_t, v1::ReshardRecord> reshards;
  std::map<uint64_t, v1::VerifyOperation> verifies;
  std::set<uint64_t> deleted_verifies;
  std::set<std::string> opened_sessions;  // worker ids added to worker_sessions
  std::set<std::string> closed_sessions;  // worker ids removed

  // Allocates a cluster-unique id (plans, moves, tasks, generations).
  uint64_t AllocId(const ClusterState& state) {
    if (next_id == 0) next_id = state.next_id;
    return next_id++;
  }
  bool empty() const;
  // The StateWrite for this change at `new_epoch` (the epoch after it).
  StateWrite ToWrite(uint64_t new_epoch) const;
};

// A new task on shard `shard` of generation `gen` with its id allocated in
// `change`: kind, epoch, index, generation, shard count, sources, targets and
// page size set; the caller adds what its kind needs and stores it. The one
// factory for shard tasks (moves, reshards, verify, recovery passes).
v1::Task NewShardTask(const ClusterState& state, Change* change, v1::TaskKind kind,
                      const v1::GenerationRoute& gen, uint32_t shard, uint64_t epoch,
                      const std::vector<std::string>& sources,
                      const std::vector<std::string>& targets, uint32_t batch_size);

// A task as `plan tasks` / GetPlanResponse.tasks shows it: kind and state in
// lower case without prefix, holder, attempts (lease generation), failures and
// the last error.
v1::PlanTask PlanTaskOf(const TaskRecord& t);

// Applies a committed change. `new_epoch` is the epoch after it.
void ApplyChange(const Change& change, uint64_t new_epoch, ClusterState* state);

// The whole routing state workers need (DESIGN: ClusterView).
std::shared_ptr<const v1::ClusterView> BuildView(const ClusterState& state);

// Names for logs and events.
std::string MoveStateName(v1::MoveState s);
std::string PlanStateName(v1::PlanState s);

// Done, failed or aborted: the plan moves no more.
bool PlanEnded(v1::PlanState s);

// The event of plan `plan_id` going from `from` to `to` (from unset when
// PLAN_STATE_UNSPECIFIED: a plan created; from == to: a change within a state).
v1::Event PlanStateEvent(uint64_t plan_id, v1::PlanState from, v1::PlanState to,
                         const std::string& reason, int64_t now_ms);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_CLUSTER_STATE_H_
