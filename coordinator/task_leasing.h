// Which live worker gets which pending task, in one leasing round, and the epoch
// each lease carries. Pure: the plan runner gathers the inputs from its state and
// applies the result.
//
// A worker takes `max_tasks` tasks at once. Tasks that run while writes to their
// shard are held (a move's FENCE and FINAL_DELTA, a reshard's swap) are the
// cutover's critical path: they are leased first and may go past `max_tasks` by
// up to `cutover_slots` per worker, so a cutover never waits for a backfill to
// free a slot, and no other task is leased onto a node while one of its shards
// is being cut over: single-threaded stores serve the cutover's few round trips
// behind every page of a backfill or reconciliation queued there first
// (docs/task-protocol.md, "Leasing").
#ifndef MIROIR_COORDINATOR_TASK_LEASING_H_
#define MIROIR_COORDINATOR_TASK_LEASING_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "miroir/v1/types.pb.h"

namespace miroir::coordinator {

// Extra tasks per worker, above its max_tasks, for tasks that hold writes.
inline constexpr int64_t kCutoverSlotsPerWorker = 16;

struct PendingTask {
  uint64_t id = 0;
  bool holds_writes = false;       // writes to its shard are held until it is done
  std::vector<std::string> nodes;  // nodes it reads or writes (sources and targets)
};

struct LeaseChoice {
  uint64_t task = 0;
  std::string worker;
  bool operator==(const LeaseChoice&) const = default;
};

// `pending` in the order they should be considered (task id order); `free` maps
// each connected live worker to max_tasks minus the tasks it holds (may be ≤ 0);
// `cutover_nodes` are the nodes of shards whose writes are held right now: a
// task that does not hold writes and touches one waits for the next round.
// Each task goes to the worker with the most free slots (ties: the lowest worker id).
std::vector<LeaseChoice> ChooseLeases(const std::vector<PendingTask>& pending,
                                      std::map<std::string, int64_t> free,
                                      const std::set<std::string>& cutover_nodes = {},
                                      int64_t cutover_slots = kCutoverSlotsPerWorker);

// Whether the task deletes on its nodes (DESIGN §6: a prepare's or cleanup's
// wipe, an anti-entropy pass's tombstone purge): a stale holder of an earlier
// lease must be fenced off before it is leased again.
bool IsDestructiveTask(const miroir::v1::Task& task);

// The epoch a task carries on its next lease, and whether the commit that leases
// it must publish a new epoch for it.
struct LeaseEpoch {
  uint64_t epoch = 0;
  bool publish_new = false;  // then `epoch` is published + 1, committed with the lease
  bool operator==(const LeaseEpoch&) const = default;
};

// `published`: the current epoch. A cutover task (FENCE, FINAL_DELTA: `fixed`)
// keeps the epoch of its state; any other non-destructive task carries at least
// the published epoch. A destructive task carries the published epoch itself,
// never more (it raises fences to it, and a fence above the published epoch
// would refuse every current writer). Leased before (`leased_before`), it must
// carry an epoch committed after that lease, so what the earlier holder still
// sends is refused once the new holder raised its targets' fence: its previous
// epoch was the one published then, so a published epoch above it will do;
// otherwise the lease publishes published + 1.
LeaseEpoch EpochForLease(uint64_t task_epoch, uint64_t published, bool fixed, bool destructive,
                         bool leased_before);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_TASK_LEASING_H_
