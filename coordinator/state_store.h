// StateStore: the narrow durable interface under the coordinator (DESIGN §9).
// The state is a set of typed objects (kind, id) -> serialized bytes, an
// append-only event log, and the routing epoch. A StateWrite is applied
// atomically: every state transition, with the epoch and routing-table change it
// causes, is one StateWrite committed before anything is published.
// The embedded implementation is SqliteStateStore; etcd can implement the same.
//
// Implementations are thread-safe; the coordinator serializes writers itself.
#ifndef MIROIR_COORDINATOR_STATE_STORE_H_
#define MIROIR_COORDINATOR_STATE_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace miroir::coordinator {

// Object kinds stored by the coordinator.
inline constexpr char kKindNode[] = "node";         // id: node id, v1::Node
inline constexpr char kKindGroup[] = "group";       // id: group id, order in value
inline constexpr char kKindIndex[] = "index";       // id: name, v1::Index
inline constexpr char kKindGeneration[] = "gen";    // id: gen id, v1::GenerationRoute w/o routes
inline constexpr char kKindShardRoute[] = "route";  // id: "gen/shard", v1::ShardRoute
inline constexpr char kKindAlias[] = "alias";       // id: alias, value: index name
inline constexpr char kKindPlan[] = "plan";         // id: plan id, v1::Plan w/o moves
inline constexpr char kKindMove[] = "move";         // id: move id, v1::Move
inline constexpr char kKindTask[] = "task";         // id: task id, v1::Task
inline constexpr char kKindMeta[] = "meta";         // id: key, value: text
inline constexpr char kKindAePass[] = "ae_pass";    // id: "index/gen/shard", v1::ShardPass
inline constexpr char kKindAeRun[] = "ae_run";      // id: run id, v1::AntiEntropyRun
inline constexpr char kKindReshard[] = "reshard";   // id: reshard id, v1::ReshardRecord
inline constexpr char kKindVerify[] = "verify";     // id: operation id, v1::VerifyOperation
// id: worker id, value empty: a worker session that has not ended clean (its
// misses may be unreported); kept across restarts (coordinator/recovery_passes.h).
inline constexpr char kKindWorkerSession[] = "worker_session";

// One atomic change.
struct StateWrite {
  struct Put {
    std::string kind;
    std::string id;
    std::optional<std::string> value;  // nullopt: delete
  };
  std::vector<Put> puts;
  struct EventRecord {
    uint64_t plan_id = 0;
    std::string value;  // serialized v1::Event
  };
  std::vector<EventRecord> events;  // appended in order
  std::vector<std::string> audit;   // serialized v1::Event audit records, appended in order
  std::optional<uint64_t> epoch;    // new epoch (strictly above the stored one)

  void Set(std::string kind, std::string id, std::string value) {
    puts.push_back({std::move(kind), std::move(id), std::move(value)});
  }
  void Delete(std::string kind, std::string id) {
    puts.push_back({std::move(kind), std::move(id), std::nullopt});
  }
  bool empty() const {
    return puts.empty() && events.empty() && audit.empty() && !epoch.has_value();
  }
};

// Everything loaded at start.
struct LoadedState {
  uint64_t epoch = 0;
  // kind -> (id -> value), ids in byte order.
  std::map<std::string, std::map<std::string, std::string>> objects;
  // Events are not loaded: read them with PlanEvents (and the audit log with
  // RecentAudit) when asked for.
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  // Reads the whole state.
  virtual absl::StatusOr<LoadedState> Load() = 0;
  // Applies `write` atomically and durably. On error nothing is applied.
  // FAILED_PRECONDITION if write.epoch is set and not strictly above the stored
  // epoch (a routing change always publishes a new number).
  virtual absl::Status Commit(const StateWrite& write) = 0;
  // Events of one plan, oldest first (plan_id 0: every event).
  virtual absl::StatusOr<std::vector<std::string>> PlanEvents(uint64_t plan_id) = 0;
  // The newest `limit` audit records (serialized v1::Event), newest first.
  virtual absl::StatusOr<std::vector<std::string>> RecentAudit(int limit) = 0;
  // Writes a consistent copy of the whole state to the new file `path` (a
  // backup the backend can open again). UNIMPLEMENTED for a backend without one
  // (etcd: `etcdctl snapshot save`, docs/runbook.md).
  virtual absl::Status BackupTo(const std::string& path) {
    return absl::UnimplementedError(absl::StrCat("this state backend has no backup to ", path));
  }
  // The leadership term this store commits under (etcd: the leader key's create
  // revision; 0 for a backend without leaders). Views and tasks carry it, and a
  // worker drops those of a lower term than it has seen (DESIGN §9a).
  virtual uint64_t LeaderTerm() const { return 0; }
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_STATE_STORE_H_
