// The reshard state machine of DESIGN §7 (changing S through a shadow index): the
// legal transition table over v1::ReshardState, the steps each state allows
// (v1::ReshardStep), transitions as events, and the dry-run estimate. It reads and
// writes the persisted v1::ReshardRecord itself (no mirror struct). Pure: time is
// passed in, no I/O, no shared state. The names operators read come from
// common/reshard_names.h.
//
//   shadow → dual_write → backfill → catching_up → verify → swap_paused → swap_fenced
//   → swap_final_delta → retention → cleanup → done;
//   aborting → aborted (before the swap: drop the shadow);
//   rolling_back → rolled_back (after the swap: the swap run backwards);  failed.
#ifndef MIROIR_COORDINATOR_RESHARD_MACHINE_H_
#define MIROIR_COORDINATOR_RESHARD_MACHINE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "miroir/v1/reshard.pb.h"
#include "miroir/v1/types.pb.h"

namespace miroir::coordinator {

// Static only: the state it judges is the persisted ReshardRecord.
class ReshardMachine {
 public:
  // Whether `from` may go to `to` (by the table; from failed, see Transition).
  // False for a state the table does not know (UNSPECIFIED, a newer value).
  static bool IsLegal(v1::ReshardState from, v1::ReshardState to);
  // Whether `state` may hold `step`. Failed keeps the step it failed in.
  static bool IsLegalStep(v1::ReshardState state, v1::ReshardStep step);
  // Whether the table knows `state` (a record holding another is refused on load).
  static bool IsKnown(v1::ReshardState state);
  // done, aborted, rolled_back.
  static bool IsTerminal(v1::ReshardState s);
  // done, aborted, rolled back.
  static bool Ended(const v1::ReshardRecord& r) { return IsTerminal(r.state()); }
  // Whether the swap has happened (the shadow is the LIVE generation).
  static bool IsSwapped(const v1::ReshardRecord& r);
  // Abort is possible before the swap (also from failed, if it failed before the swap).
  static bool CanAbort(const v1::ReshardRecord& r);
  // Rollback is possible after the swap, until cleanup starts.
  static bool CanRollback(const v1::ReshardRecord& r);
  // Complete (drop the retained generation now) is possible in retention.
  static bool CanComplete(const v1::ReshardRecord& r);
  // A new reshard of the same index is refused while this one is not terminal
  // (including retention, until `complete`).
  static bool BlocksNewReshard(const v1::ReshardRecord& r);
  // Whether retain_old_index_hours have passed since the swap.
  static bool RetentionExpired(const v1::ReshardRecord& r, int64_t now_ms, double retain_hours);

  // Moves `r` to `to` at `now_ms` (state, failed_from, state_since_ms,
  // swapped_at_ms; a step the new state does not allow is cleared).
  // FAILED_PRECONDITION naming both states when illegal; `r` is then unchanged.
  // The event carries plan_id = r->id() and the states' names.
  static absl::StatusOr<v1::Event> Transition(v1::ReshardRecord* r, v1::ReshardState to,
                                              const std::string& reason, int64_t now_ms,
                                              uint64_t epoch);
  // Sets the step inside the current state. FAILED_PRECONDITION naming both when
  // the state does not allow it; `r` is then unchanged.
  static absl::Status SetStep(v1::ReshardRecord* r, v1::ReshardStep step);
};

// What a finished catch-up round of a reshard decides (docs/resharding.md
// "Convergence under writes"). The swap's final delta copies what the live
// generation takes between the last round's W and the fence, about one round's
// worth; so the round's documents at the catch-up's measured copy rate (the
// documents of each round over its wall time, smoothed over rounds) estimate
// the final delta's duration. The catch-up converges when that estimate fits in
// half of max_write_stall (the other half is left to the pause's acks, the
// fences and the flip), or when the round copied at most catch_up_threshold
// documents (the index-wide rule, kept: a quiet index converges at once), or when
// the operator forced the cutover. Past catch_up_max in catching_up without
// converging it says "not converging" and goes on; the operator decides.
struct CatchUpRound {
  uint64_t documents = 0;  // the round's documents, every shard
  int64_t started_ms = 0;  // 0: unknown (the rate is then not updated)
  int64_t now_ms = 0;
  uint64_t previous_rate = 0;  // docs/s measured before (0: none)
  int64_t catch_up_since_ms = 0;
  bool forced = false;  // `reshard cutover --force`
};
struct CatchUpVerdict {
  bool converged = false;
  bool not_converging = false;
  uint64_t round_ms = 0;
  uint64_t copy_rate_docs_per_s = 0;
  uint64_t estimated_final_delta_ms = 0;
  std::string message;  // why it goes on (empty when converged)
};
CatchUpVerdict JudgeCatchUpRound(const CatchUpRound& round, const v1::ReshardRecord& r,
                                 uint64_t catch_up_threshold, absl::Duration max_write_stall,
                                 absl::Duration catch_up_max);

// Dry-run estimate (DESIGN §7): storage ≈ 2× corpus while both generations exist,
// peak node writes/s = backfill_dps × RF × RG + 2 × write_dps × RF × RG.
struct ReshardEstimateInput {
  uint64_t documents = 0;   // live documents of the index (one replica)
  uint64_t bytes = 0;       // live bytes of the index (one replica)
  uint32_t rf = 1;          // replicas per group
  uint32_t groups = 1;      // RG
  double backfill_dps = 0;  // backfill throttle, docs/s (> 0)
  double write_dps = 0;     // client writes/s to the index
};
struct ReshardEstimate {
  uint64_t storage_peak_bytes = 0;    // over all nodes
  double peak_node_writes_per_s = 0;  // summed over all nodes
  double duration_s = 0;              // backfill at the throttle
};
absl::StatusOr<ReshardEstimate> EstimateReshard(const ReshardEstimateInput& in);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_RESHARD_MACHINE_H_
