// Bulk work steps aside for cutovers (docs/task-protocol.md "Cutover yield").
// While a cutover holds the writes to a shard, the fence and the final delta are
// the only work that shortens the stall; a backfill page or a reconciliation
// already queued in the same single-threaded store runs in front of them. So
// between pages a bulk task waits while any of its nodes carries a paused shard.
// Pure, no I/O, any thread.
#ifndef MIROIR_WORKER_TASKS_CUTOVER_YIELD_H_
#define MIROIR_WORKER_TASKS_CUTOVER_YIELD_H_

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "miroir/v1/types.pb.h"

namespace miroir {

// The longest one page waits for cutovers: a cutover that outlasts it (a stuck
// drain, a dead worker's lease) slows bulk work down without stopping it.
inline constexpr absl::Duration kMaxCutoverYield = absl::Seconds(1);

// True for bulk kinds (BACKFILL, CATCH_UP, RECONCILE, VERIFY, AE_PASS,
// RESHARD_BACKFILL, RESHARD_VERIFY and a RESHARD_DELTA catch-up pass); false for
// the tasks a cutover itself runs (FENCE, FINAL_DELTA, a RESHARD_DELTA with
// `upto`), and for PREPARE and CLEANUP (one fence and a wipe, not pages).
bool YieldsToCutovers(const v1::Task& t);

// Whether any node the task reads or writes (sources, targets, and every node of
// its target_route and source_route) is in `cutover_nodes`.
bool TouchesCutover(const v1::Task& t, const absl::flat_hash_set<std::string>& cutover_nodes);

}  // namespace miroir

#endif  // MIROIR_WORKER_TASKS_CUTOVER_YIELD_H_
