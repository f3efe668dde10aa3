// The reshard state machine of DESIGN §7 (changing S through a shadow index): the
// legal transition table, transitions as events, the phase reported as a metric and
// the dry-run estimate. Pure: time is passed in, no I/O, no shared state.
//
//   shadow → dual_write → backfill → catching_up → verify → swap_paused → swap_fenced
//   → swap_final_delta → retention → cleanup → done;
//   aborting → aborted (before the swap: drop the shadow);
//   rolling_back → rolled_back (after the swap: the swap run backwards);  failed.
#ifndef MIROIR_COORDINATOR_RESHARD_MACHINE_H_
#define MIROIR_COORDINATOR_RESHARD_MACHINE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "miroir/v1/types.pb.h"

namespace miroir::coordinator {

namespace v1 = ::miroir::v1;

enum class ReshardState {
  kShadow = 1,      // shadow generation created with S_new, not client-visible
  kDualWrite,       // routing publishes the shadow: every write also goes there
  kBackfill,        // re-hash every live shard (docs and tombstones) into the shadow
  kCatchingUp,      // passes from the sources' change sequences
  kVerify,          // pk-bucketed compare of live and shadow
  kSwapPaused,      // writes to the index paused
  kSwapFenced,      // RF − q + 1 owners per live shard per group fenced
  kSwapFinalDelta,  // last delta applied; next: flip in one epoch
  kRetention,       // shadow is LIVE, old generation RETAINED (reverse dual-write)
  kCleanup,         // dropping the retained generation's keys
  kDone,
  kAborting,  // before the swap: dropping the shadow
  kAborted,
  kRollingBack,  // after the swap: swap run backwards into the old generation
  kRolledBack,
  kFailed,
};

std::string_view ReshardStateName(ReshardState s);
// Parses a name produced by ReshardStateName (for the state store).
absl::StatusOr<ReshardState> ParseReshardState(std::string_view name);

// What the coordinator persists about one reshard (the runner keeps task ids etc.).
struct ReshardPlan {
  uint64_t id = 0;
  std::string index;            // the index uid
  uint32_t old_shards = 0;      // S_old
  uint32_t new_shards = 0;      // S_new
  uint64_t old_generation = 0;  // generation LIVE at start
  uint64_t new_generation = 0;  // the shadow generation
  ReshardState state = ReshardState::kShadow;
  ReshardState failed_from = ReshardState::kShadow;  // where a failure/abort started
  int64_t state_since_ms = 0;
  int64_t swapped_at_ms = 0;  // when the flip was published (0 before the swap)
  bool force = false;         // window gate bypassed (recorded as a warning)
};

// Metric phase (miroir_reshard_phase): 0 idle, 1 shadow, 2 backfill+catch-up,
// 3 verify, 4 swap, 5 cleanup.
int ReshardPhase(ReshardState s);

class ReshardMachine {
 public:
  static bool IsLegal(ReshardState from, ReshardState to);
  // done, aborted, rolled_back.
  static bool IsTerminal(ReshardState s);
  // Whether the swap has happened (the shadow is the LIVE generation).
  static bool IsSwapped(const ReshardPlan& plan);
  // Abort is possible before the swap (also from failed, if it failed before the swap).
  static bool CanAbort(const ReshardPlan& plan);
  // Rollback is possible after the swap, until cleanup starts.
  static bool CanRollback(const ReshardPlan& plan);
  // Complete (drop the retained generation now) is possible in retention.
  static bool CanComplete(const ReshardPlan& plan);
  // A new reshard of the same index is refused while this one is not terminal
  // (including retention, until `complete`).
  static bool BlocksNewReshard(const ReshardPlan& plan);
  // Whether retain_old_index_hours have passed since the swap.
  static bool RetentionExpired(const ReshardPlan& plan, int64_t now_ms, double retain_hours);

  // Moves `plan` to `to` at `now_ms`. FAILED_PRECONDITION naming both states when
  // illegal; the plan is then unchanged. The event carries plan_id = plan->id.
  static absl::StatusOr<v1::Event> Transition(ReshardPlan* plan, ReshardState to,
                                              const std::string& reason, int64_t now_ms,
                                              uint64_t epoch);
};

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
