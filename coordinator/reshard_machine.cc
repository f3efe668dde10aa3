#include "coordinator/reshard_machine.h"

#include <array>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace miroir::coordinator {
namespace {

using R = ReshardState;

constexpr std::array<std::pair<R, std::string_view>, 16> kNames = {{
    {R::kShadow, "shadow"},
    {R::kDualWrite, "dual_write"},
    {R::kBackfill, "backfill"},
    {R::kCatchingUp, "catching_up"},
    {R::kVerify, "verify"},
    {R::kSwapPaused, "swap_paused"},
    {R::kSwapFenced, "swap_fenced"},
    {R::kSwapFinalDelta, "swap_final_delta"},
    {R::kRetention, "retention"},
    {R::kCleanup, "cleanup"},
    {R::kDone, "done"},
    {R::kAborting, "aborting"},
    {R::kAborted, "aborted"},
    {R::kRollingBack, "rolling_back"},
    {R::kRolledBack, "rolled_back"},
    {R::kFailed, "failed"},
}};

const std::map<R, std::set<R>>& Table() {
  static const auto* table = new std::map<R, std::set<R>>{
      {R::kShadow, {R::kDualWrite, R::kFailed, R::kAborting}},
      {R::kDualWrite, {R::kBackfill, R::kFailed, R::kAborting}},
      {R::kBackfill, {R::kCatchingUp, R::kFailed, R::kAborting}},
      // catching_up -> backfill when a source's incarnation changed (its sequence is
      // gone); -> swap_paused when verify_before_swap is off.
      {R::kCatchingUp, {R::kVerify, R::kSwapPaused, R::kBackfill, R::kFailed, R::kAborting}},
      // verify -> catching_up: a live-newer mismatch is re-checked after one more pass.
      {R::kVerify, {R::kSwapPaused, R::kCatchingUp, R::kFailed, R::kAborting}},
      // swap_paused -> catching_up: too few fenced owners, or the stall budget ran out.
      {R::kSwapPaused, {R::kSwapFenced, R::kCatchingUp, R::kFailed, R::kAborting}},
      {R::kSwapFenced, {R::kSwapFinalDelta, R::kCatchingUp, R::kFailed, R::kAborting}},
      // swap_final_delta -> retention is the flip (one epoch).
      {R::kSwapFinalDelta, {R::kRetention, R::kCatchingUp, R::kFailed, R::kAborting}},
      {R::kRetention, {R::kCleanup, R::kRollingBack}},
      {R::kCleanup, {R::kDone, R::kFailed}},
      {R::kRollingBack, {R::kRolledBack, R::kFailed}},
      {R::kAborting, {R::kAborted, R::kFailed}},
      // failed -> aborting before the swap, -> rolling_back after it (checked below).
      {R::kFailed, {R::kAborting, R::kRollingBack, R::kCleanup}},
      {R::kDone, {}},
      {R::kAborted, {}},
      {R::kRolledBack, {}},
  };
  return *table;
}

// States on the client-visible old generation's side of the flip (an abort in
// progress counts: it only drops the shadow).
bool BeforeSwap(R s) { return s < R::kRetention || s == R::kAborting || s == R::kAborted; }

}  // namespace

std::string_view ReshardStateName(R s) {
  for (const auto& [state, name] : kNames) {
    if (state == s) return name;
  }
  return "unknown";
}

absl::StatusOr<R> ParseReshardState(std::string_view name) {
  for (const auto& [state, n] : kNames) {
    if (n == name) return state;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown reshard state '", std::string(name), "'"));
}

int ReshardPhase(R s) {
  switch (s) {
    case R::kShadow:
    case R::kDualWrite:
      return 1;
    case R::kBackfill:
    case R::kCatchingUp:
      return 2;
    case R::kVerify:
      return 3;
    case R::kSwapPaused:
    case R::kSwapFenced:
    case R::kSwapFinalDelta:
    case R::kRollingBack:
      return 4;
    case R::kRetention:
    case R::kCleanup:
    case R::kAborting:
      return 5;
    case R::kFailed:
    case R::kDone:
    case R::kAborted:
    case R::kRolledBack:
      return 0;
  }
  return 0;
}

bool ReshardMachine::IsLegal(R from, R to) {
  auto it = Table().find(from);
  return it != Table().end() && it->second.count(to) > 0;
}

bool ReshardMachine::IsTerminal(R s) {
  return s == R::kDone || s == R::kAborted || s == R::kRolledBack;
}

bool ReshardMachine::IsSwapped(const ReshardPlan& plan) {
  if (plan.state == R::kFailed) return !BeforeSwap(plan.failed_from);
  return plan.state == R::kRetention || plan.state == R::kCleanup || plan.state == R::kDone ||
         plan.state == R::kRollingBack;
}

bool ReshardMachine::CanAbort(const ReshardPlan& plan) {
  if (plan.state == R::kFailed) return BeforeSwap(plan.failed_from);
  return BeforeSwap(plan.state) && IsLegal(plan.state, R::kAborting);
}

bool ReshardMachine::CanRollback(const ReshardPlan& plan) {
  if (plan.state == R::kFailed) {
    return plan.failed_from == R::kRetention || plan.failed_from == R::kRollingBack;
  }
  return plan.state == R::kRetention;
}

bool ReshardMachine::CanComplete(const ReshardPlan& plan) { return plan.state == R::kRetention; }

bool ReshardMachine::BlocksNewReshard(const ReshardPlan& plan) { return !IsTerminal(plan.state); }

bool ReshardMachine::RetentionExpired(const ReshardPlan& plan, int64_t now_ms,
                                      double retain_hours) {
  if (plan.state != R::kRetention || plan.swapped_at_ms == 0) return false;
  const double retain_ms = retain_hours * 3600.0 * 1000.0;
  return static_cast<double>(now_ms - plan.swapped_at_ms) >= retain_ms;
}

absl::StatusOr<v1::Event> ReshardMachine::Transition(ReshardPlan* plan, R to,
                                                     const std::string& reason, int64_t now_ms,
                                                     uint64_t epoch) {
  const R from = plan->state;
  bool legal = IsLegal(from, to);
  // From failed, the way out depends on which side of the swap it failed.
  if (legal && from == R::kFailed) {
    if (to == R::kAborting) legal = BeforeSwap(plan->failed_from);
    if (to == R::kRollingBack) legal = CanRollback(*plan);
    if (to == R::kCleanup) legal = plan->failed_from == R::kCleanup;
  }
  if (!legal) {
    return absl::FailedPreconditionError(
        absl::StrCat("illegal reshard transition ", std::string(ReshardStateName(from)), " -> ",
                     std::string(ReshardStateName(to)), " (reshard ", plan->id, ")"));
  }
  if ((to == R::kFailed || to == R::kAborting) && from != R::kFailed) plan->failed_from = from;
  if (to == R::kRetention && from == R::kSwapFinalDelta) plan->swapped_at_ms = now_ms;
  plan->state = to;
  plan->state_since_ms = now_ms;
  v1::Event ev;
  ev.set_time_ms(now_ms);
  ev.set_plan_id(plan->id);
  ev.set_from(std::string(ReshardStateName(from)));
  ev.set_to(std::string(ReshardStateName(to)));
  ev.set_reason(reason);
  ev.set_epoch(epoch);
  return ev;
}

absl::StatusOr<ReshardEstimate> EstimateReshard(const ReshardEstimateInput& in) {
  if (in.rf == 0) return absl::InvalidArgumentError("rf must be >= 1");
  if (in.groups == 0) return absl::InvalidArgumentError("groups must be >= 1");
  if (!(in.backfill_dps > 0)) return absl::InvalidArgumentError("backfill_dps must be > 0");
  if (in.write_dps < 0) return absl::InvalidArgumentError("write_dps must be >= 0");
  const double copies = static_cast<double>(in.rf) * static_cast<double>(in.groups);
  ReshardEstimate out;
  out.storage_peak_bytes = 2 * in.bytes * static_cast<uint64_t>(in.rf) * in.groups;
  out.peak_node_writes_per_s = in.backfill_dps * copies + 2.0 * in.write_dps * copies;
  out.duration_s = static_cast<double>(in.documents) / in.backfill_dps;
  return out;
}

}  // namespace miroir::coordinator
