#include "coordinator/reshard_machine.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/reshard_names.h"

namespace miroir::coordinator {
namespace {

using R = v1::ReshardState;
using S = v1::ReshardStep;

const std::map<R, std::set<R>>& Table() {
  static const auto* table = new std::map<R, std::set<R>>{
      {v1::RESHARD_SHADOW, {v1::RESHARD_DUAL_WRITE, v1::RESHARD_FAILED, v1::RESHARD_ABORTING}},
      {v1::RESHARD_DUAL_WRITE, {v1::RESHARD_BACKFILL, v1::RESHARD_FAILED, v1::RESHARD_ABORTING}},
      {v1::RESHARD_BACKFILL, {v1::RESHARD_CATCHING_UP, v1::RESHARD_FAILED, v1::RESHARD_ABORTING}},
      // catching_up -> backfill when a source's incarnation changed (its sequence is
      // gone); -> swap_paused when verify_before_swap is off.
      {v1::RESHARD_CATCHING_UP,
       {v1::RESHARD_VERIFY, v1::RESHARD_SWAP_PAUSED, v1::RESHARD_BACKFILL, v1::RESHARD_FAILED,
        v1::RESHARD_ABORTING}},
      // verify -> catching_up: a live-newer mismatch is re-checked after one more pass.
      {v1::RESHARD_VERIFY,
       {v1::RESHARD_SWAP_PAUSED, v1::RESHARD_CATCHING_UP, v1::RESHARD_FAILED,
        v1::RESHARD_ABORTING}},
      // swap_paused -> catching_up: too few fenced owners, or the stall budget ran out.
      {v1::RESHARD_SWAP_PAUSED,
       {v1::RESHARD_SWAP_FENCED, v1::RESHARD_CATCHING_UP, v1::RESHARD_FAILED,
        v1::RESHARD_ABORTING}},
      {v1::RESHARD_SWAP_FENCED,
       {v1::RESHARD_SWAP_FINAL_DELTA, v1::RESHARD_CATCHING_UP, v1::RESHARD_FAILED,
        v1::RESHARD_ABORTING}},
      // swap_final_delta -> retention is the flip (one epoch).
      {v1::RESHARD_SWAP_FINAL_DELTA,
       {v1::RESHARD_RETENTION, v1::RESHARD_CATCHING_UP, v1::RESHARD_FAILED, v1::RESHARD_ABORTING}},
      {v1::RESHARD_RETENTION, {v1::RESHARD_CLEANUP, v1::RESHARD_ROLLING_BACK}},
      {v1::RESHARD_CLEANUP, {v1::RESHARD_DONE, v1::RESHARD_FAILED}},
      {v1::RESHARD_ROLLING_BACK, {v1::RESHARD_ROLLED_BACK, v1::RESHARD_FAILED}},
      {v1::RESHARD_ABORTING, {v1::RESHARD_ABORTED, v1::RESHARD_FAILED}},
      // failed -> aborting before the swap, -> rolling_back after it, -> cleanup
      // when it failed there (checked in Transition).
      {v1::RESHARD_FAILED, {v1::RESHARD_ABORTING, v1::RESHARD_ROLLING_BACK, v1::RESHARD_CLEANUP}},
      {v1::RESHARD_DONE, {}},
      {v1::RESHARD_ABORTED, {}},
      {v1::RESHARD_ROLLED_BACK, {}},
  };
  return *table;
}

// The steps each state may hold besides NONE (failed keeps any: the one it
// failed in, for people and for a retried cleanup).
const std::map<R, std::set<S>>& Steps() {
  static const auto* steps = new std::map<R, std::set<S>>{
      // The fence step ends by setting final_delta before the move to swap_fenced.
      {v1::RESHARD_SWAP_PAUSED,
       {v1::RESHARD_STEP_PAUSING, v1::RESHARD_STEP_FENCING, v1::RESHARD_STEP_FINAL_DELTA}},
      {v1::RESHARD_SWAP_FENCED, {v1::RESHARD_STEP_FINAL_DELTA}},
      {v1::RESHARD_SWAP_FINAL_DELTA, {v1::RESHARD_STEP_FINAL_DELTA}},
      {v1::RESHARD_CLEANUP, {v1::RESHARD_STEP_DROPPING}},
      {v1::RESHARD_ABORTING,
       {v1::RESHARD_STEP_UNROUTE, v1::RESHARD_STEP_UNROUTED, v1::RESHARD_STEP_DROPPING}},
      // The swap run backwards: start, catch_up, pausing, fencing, final_delta,
      // flipped, dropping.
      {v1::RESHARD_ROLLING_BACK,
       {v1::RESHARD_STEP_START, v1::RESHARD_STEP_CATCH_UP, v1::RESHARD_STEP_PAUSING,
        v1::RESHARD_STEP_FENCING, v1::RESHARD_STEP_FINAL_DELTA, v1::RESHARD_STEP_FLIPPED,
        v1::RESHARD_STEP_DROPPING}},
  };
  return *steps;
}

// States on the client-visible old generation's side of the flip (an abort in
// progress counts: it only drops the shadow).
bool BeforeSwap(R s) {
  switch (s) {
    case v1::RESHARD_SHADOW:
    case v1::RESHARD_DUAL_WRITE:
    case v1::RESHARD_BACKFILL:
    case v1::RESHARD_CATCHING_UP:
    case v1::RESHARD_VERIFY:
    case v1::RESHARD_SWAP_PAUSED:
    case v1::RESHARD_SWAP_FENCED:
    case v1::RESHARD_SWAP_FINAL_DELTA:
    case v1::RESHARD_ABORTING:
    case v1::RESHARD_ABORTED:
    case v1::RESHARD_STATE_UNSPECIFIED:  // a record started before failed_from was set
      return true;
    default:
      return false;
  }
}

}  // namespace

bool ReshardMachine::IsLegal(R from, R to) {
  auto it = Table().find(from);
  return it != Table().end() && it->second.count(to) > 0;
}

bool ReshardMachine::IsLegalStep(R state, S step) {
  if (!IsKnown(state)) return false;
  if (step == v1::RESHARD_STEP_NONE) return true;
  if (state == v1::RESHARD_FAILED) return v1::ReshardStep_IsValid(step);
  auto it = Steps().find(state);
  return it != Steps().end() && it->second.count(step) > 0;
}

bool ReshardMachine::IsKnown(R state) { return Table().count(state) > 0; }

bool ReshardMachine::IsTerminal(R s) {
  return s == v1::RESHARD_DONE || s == v1::RESHARD_ABORTED || s == v1::RESHARD_ROLLED_BACK;
}

bool ReshardMachine::IsSwapped(const v1::ReshardRecord& r) {
  if (r.state() == v1::RESHARD_FAILED) return !BeforeSwap(r.failed_from());
  return r.state() == v1::RESHARD_RETENTION || r.state() == v1::RESHARD_CLEANUP ||
         r.state() == v1::RESHARD_DONE || r.state() == v1::RESHARD_ROLLING_BACK;
}

bool ReshardMachine::CanAbort(const v1::ReshardRecord& r) {
  if (r.state() == v1::RESHARD_FAILED) return BeforeSwap(r.failed_from());
  return BeforeSwap(r.state()) && IsLegal(r.state(), v1::RESHARD_ABORTING);
}

bool ReshardMachine::CanRollback(const v1::ReshardRecord& r) {
  if (r.state() == v1::RESHARD_FAILED) {
    return r.failed_from() == v1::RESHARD_RETENTION || r.failed_from() == v1::RESHARD_ROLLING_BACK;
  }
  return r.state() == v1::RESHARD_RETENTION;
}

bool ReshardMachine::CanComplete(const v1::ReshardRecord& r) {
  return r.state() == v1::RESHARD_RETENTION;
}

bool ReshardMachine::BlocksNewReshard(const v1::ReshardRecord& r) { return !IsTerminal(r.state()); }

bool ReshardMachine::RetentionExpired(const v1::ReshardRecord& r, int64_t now_ms,
                                      double retain_hours) {
  if (r.state() != v1::RESHARD_RETENTION || r.swapped_at_ms() == 0) return false;
  const double retain_ms = retain_hours * 3600.0 * 1000.0;
  return static_cast<double>(now_ms - r.swapped_at_ms()) >= retain_ms;
}

absl::StatusOr<v1::Event> ReshardMachine::Transition(v1::ReshardRecord* r, R to,
                                                     const std::string& reason, int64_t now_ms,
                                                     uint64_t epoch) {
  const R from = r->state();
  bool legal = IsLegal(from, to);
  // From failed, the way out depends on which side of the swap it failed.
  if (legal && from == v1::RESHARD_FAILED) {
    if (to == v1::RESHARD_ABORTING) legal = BeforeSwap(r->failed_from());
    if (to == v1::RESHARD_ROLLING_BACK) legal = CanRollback(*r);
    if (to == v1::RESHARD_CLEANUP) legal = r->failed_from() == v1::RESHARD_CLEANUP;
  }
  if (!legal) {
    return absl::FailedPreconditionError(
        absl::StrCat("illegal reshard transition ", ReshardStateName(from), " -> ",
                     ReshardStateName(to), " (reshard ", r->id(), ")"));
  }
  if ((to == v1::RESHARD_FAILED || to == v1::RESHARD_ABORTING) && from != v1::RESHARD_FAILED) {
    r->set_failed_from(from);
  }
  if (to == v1::RESHARD_RETENTION && from == v1::RESHARD_SWAP_FINAL_DELTA) {
    r->set_swapped_at_ms(now_ms);
  }
  r->set_state(to);
  r->set_state_since_ms(now_ms);
  if (!IsLegalStep(to, r->step())) r->set_step(v1::RESHARD_STEP_NONE);
  v1::Event ev;
  ev.set_time_ms(now_ms);
  ev.set_plan_id(r->id());
  ev.set_from(ReshardStateName(from));
  ev.set_to(ReshardStateName(to));
  ev.set_reason(reason);
  ev.set_epoch(epoch);
  return ev;
}

absl::Status ReshardMachine::SetStep(v1::ReshardRecord* r, S step) {
  if (!IsLegalStep(r->state(), step)) {
    return absl::FailedPreconditionError(
        absl::StrCat("illegal reshard step ", ReshardStepName(step), " in state ",
                     ReshardStateName(r->state()), " (reshard ", r->id(), ")"));
  }
  r->set_step(step);
  return absl::OkStatus();
}

CatchUpVerdict JudgeCatchUpRound(const CatchUpRound& round, const v1::ReshardRecord& r,
                                 uint64_t catch_up_threshold, absl::Duration max_write_stall,
                                 absl::Duration catch_up_max) {
  CatchUpVerdict v;
  v.copy_rate_docs_per_s = round.previous_rate;
  if (round.started_ms > 0 && round.now_ms >= round.started_ms) {
    v.round_ms = static_cast<uint64_t>(std::max<int64_t>(1, round.now_ms - round.started_ms));
    if (round.documents > 0) {
      const uint64_t rate = round.documents * 1000 / v.round_ms;
      v.copy_rate_docs_per_s =
          round.previous_rate == 0 ? rate : (round.previous_rate + rate + 1) / 2;
    }
  }
  if (round.documents > 0) {
    v.estimated_final_delta_ms =
        v.copy_rate_docs_per_s == 0
            ? UINT64_MAX
            : (round.documents * 1000 + v.copy_rate_docs_per_s - 1) / v.copy_rate_docs_per_s;
  }
  const auto budget_ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(max_write_stall) / 2);
  v.converged = round.forced || round.documents <= catch_up_threshold ||
                v.estimated_final_delta_ms <= budget_ms;
  if (v.converged) return v;
  const std::string estimate =
      v.estimated_final_delta_ms == UINT64_MAX
          ? std::string("the copy rate is not measured yet")
          : absl::StrCat("the final delta would take about ", v.estimated_final_delta_ms, " ms at ",
                         v.copy_rate_docs_per_s, " docs/s");
  v.message = absl::StrCat("catch-up round ", r.catch_up_passes() + 1, " copied ", round.documents,
                           " documents in ", v.round_ms, " ms; ", estimate,
                           ", above half of max_write_stall (", budget_ms, " ms)");
  const int64_t since = round.catch_up_since_ms ? round.catch_up_since_ms : round.now_ms;
  if (absl::Milliseconds(round.now_ms - since) > catch_up_max) {
    v.not_converging = true;
    const std::string force =
        absl::StrCat("`miroir-ctl reshard cutover --force --index ", r.index());
    const std::string abort = absl::StrCat("`miroir-ctl reshard abort --index ", r.index());
    v.message = absl::StrCat("not converging after ", absl::FormatDuration(catch_up_max), ": ",
                             v.message, "; operator decides: throttle writes, force the swap (",
                             force, "`) or abort (", abort, "`)");
  }
  return v;
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
