// The names operators read for a reshard's state and step ("swap_paused",
// "fencing"): ctl's status and watch, the reshard events, the metric labels. The
// one place they are derived from the proto enums (miroir/v1/reshard.proto), so
// the coordinator and ctl cannot disagree. Pure; safe from any thread.
#ifndef MIROIR_COMMON_RESHARD_NAMES_H_
#define MIROIR_COMMON_RESHARD_NAMES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "miroir/v1/reshard.pb.h"

namespace miroir {

// "shadow", "swap_final_delta", …; "unknown" for UNSPECIFIED or a value this
// build does not know.
std::string ReshardStateName(v1::ReshardState s);
// "", "pausing", "final_delta", …; "unknown" for a value this build does not know.
std::string ReshardStepName(v1::ReshardStep s);

// Inverses of the two above, for names written by an earlier version.
// INVALID_ARGUMENT naming the text when it is no state (step) name; "unknown"
// and "" are not state names.
absl::StatusOr<v1::ReshardState> ParseReshardState(absl::string_view name);
absl::StatusOr<v1::ReshardStep> ParseReshardStep(absl::string_view name);

// Metric phase (miroir_reshard_phase, and ctl's "phase N"): 0 idle or ended,
// 1 shadow, 2 backfill + catch-up, 3 verify, 4 swap or rollback, 5 cleanup.
int ReshardPhase(v1::ReshardState s);

}  // namespace miroir

#endif  // MIROIR_COMMON_RESHARD_NAMES_H_
