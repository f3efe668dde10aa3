#include "coordinator/move_machine.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "coordinator/cluster_state.h"
#include "coordinator/cutover.h"

namespace miroir::coordinator {
namespace {

using S = v1::MoveState;

const std::map<S, std::set<S>>& Table() {
  static const auto* table = new std::map<S, std::set<S>>{
      {v1::MOVE_PENDING, {v1::MOVE_PREPARE, v1::MOVE_ABORTED}},
      {v1::MOVE_PREPARE, {v1::MOVE_DUAL_WRITE, v1::MOVE_FAILED, v1::MOVE_ABORTING}},
      {v1::MOVE_DUAL_WRITE, {v1::MOVE_COPYING, v1::MOVE_FAILED, v1::MOVE_ABORTING}},
      // copying -> active only when the delta pass is skipped (gated).
      // copying/paused/final_delta -> prepare: a joining node changed incarnation
      // (its copy is gone) before active.
      {v1::MOVE_COPYING,
       {v1::MOVE_CATCHING_UP, v1::MOVE_ACTIVE, v1::MOVE_PREPARE, v1::MOVE_FAILED,
        v1::MOVE_ABORTING}},
      // catching_up -> copying when an old owner's incarnation changed (copy restarts).
      {v1::MOVE_CATCHING_UP,
       {v1::MOVE_PAUSED, v1::MOVE_COPYING, v1::MOVE_FAILED, v1::MOVE_ABORTING}},
      // paused -> catching_up: too few fenced old owners, or the stall budget ran out.
      {v1::MOVE_PAUSED,
       {v1::MOVE_FINAL_DELTA, v1::MOVE_CATCHING_UP, v1::MOVE_PREPARE, v1::MOVE_FAILED,
        v1::MOVE_ABORTING}},
      {v1::MOVE_FINAL_DELTA,
       {v1::MOVE_ACTIVE, v1::MOVE_CATCHING_UP, v1::MOVE_PREPARE, v1::MOVE_FAILED,
        v1::MOVE_ABORTING}},
      {v1::MOVE_ACTIVE, {v1::MOVE_RECONCILING, v1::MOVE_CLEANUP, v1::MOVE_FAILED}},
      {v1::MOVE_RECONCILING, {v1::MOVE_CLEANUP, v1::MOVE_FAILED}},
      // cleanup -> reconciling: a joining node changed incarnation after active.
      {v1::MOVE_CLEANUP, {v1::MOVE_DONE, v1::MOVE_RECONCILING, v1::MOVE_FAILED}},
      {v1::MOVE_FAILED, {v1::MOVE_ABORTING}},
      {v1::MOVE_ABORTING, {v1::MOVE_ABORTED, v1::MOVE_FAILED}},
      {v1::MOVE_DONE, {}},
      {v1::MOVE_ABORTED, {}},
  };
  return *table;
}

}  // namespace

bool MoveMachine::IsLegal(S from, S to) {
  auto it = Table().find(from);
  return it != Table().end() && it->second.count(to) > 0;
}

bool MoveMachine::IsTerminal(S s) { return s == v1::MOVE_DONE || s == v1::MOVE_ABORTED; }

bool MoveMachine::CanAbort(const v1::Move& move) {
  if (move.state() == v1::MOVE_PENDING) return true;
  if (move.state() == v1::MOVE_FAILED) {
    // A move that failed after its cutover is rolled back by a new move instead.
    S from = move.aborted_from();
    return from == v1::MOVE_STATE_UNSPECIFIED || from < v1::MOVE_ACTIVE;
  }
  return IsLegal(move.state(), v1::MOVE_ABORTING);
}

absl::StatusOr<v1::Event> MoveMachine::Transition(v1::Move* move, S to, const std::string& reason,
                                                  int64_t now_ms, uint64_t epoch) {
  const S from = move->state();
  if (!IsLegal(from, to)) {
    return absl::FailedPreconditionError(
        absl::StrCat("illegal move transition ", MoveStateName(from), " -> ", MoveStateName(to),
                     " (move ", move->id(), ")"));
  }
  // aborted_from remembers where an abort or a failure started (for CanAbort).
  if (to == v1::MOVE_ABORTING || to == v1::MOVE_FAILED) {
    if (from != v1::MOVE_FAILED) move->set_aborted_from(from);
  }
  if (to == v1::MOVE_PREPARE && from != v1::MOVE_PENDING) {
    // Back to prepare (a joining node lost its copy): the copy starts over, so
    // every W, F, the recorded incarnations and the pause are void. The backfill
    // cursor lived in the consumed task.
    move->clear_watermarks();
    move->clear_fences();
    move->clear_joining();
    move->set_paused_at_ms(0);
    move->set_fence_epoch(0);
    move->set_catch_up_since_ms(0);
    move->set_remaining(0);
    move->set_documents_copied(0);
  }
  // A forced cutover is one attempt: leaving catching_up spends it.
  if (from == v1::MOVE_CATCHING_UP && to != from) move->set_force_cutover(false);
  move->set_state(to);
  move->set_state_since_ms(now_ms);
  move->set_wait_epoch(0);
  move->set_acked_at_ms(0);
  move->set_task_id(0);
  if (to == v1::MOVE_CATCHING_UP && move->catch_up_since_ms() == 0) {
    move->set_catch_up_since_ms(now_ms);
  }
  if (to != v1::MOVE_FAILED && to != v1::MOVE_CATCHING_UP) move->clear_message();
  v1::Event e;
  e.set_time_ms(now_ms);
  e.set_plan_id(move->plan_id());
  e.set_move_id(move->id());
  e.set_from(MoveStateName(from));
  e.set_to(MoveStateName(to));
  e.set_reason(reason);
  e.set_epoch(epoch);
  return e;
}

MoveMachine::CatchUpDecision MoveMachine::AfterCatchUpPass(const v1::Move& move, uint64_t remaining,
                                                           int64_t now_ms,
                                                           const MigrationConfig& config,
                                                           bool window_open) {
  CatchUpDecision d;
  if (move.force_cutover()) {
    // The operator forced it (`plan cutover --force`): the gates were checked then,
    // the window is bypassed as by a forced plan; max_write_stall still bounds it.
    d.next = CatchUpNext::kPause;
    d.message = absl::StrCat("cutover forced by the operator (", remaining, " left)");
    return d;
  }
  const bool small = remaining <= config.catch_up_threshold;
  if (small && window_open) {
    d.next = CatchUpNext::kPause;
    return d;
  }
  if (small) {
    d.next = CatchUpNext::kWaitForWindow;
    d.message = "waiting for a schedule window before pausing writes";
    return d;
  }
  d.next = CatchUpNext::kAnotherPass;
  const int64_t since = move.catch_up_since_ms() ? move.catch_up_since_ms() : now_ms;
  if (absl::Milliseconds(now_ms - since) > config.catch_up_max) {
    d.message = absl::StrCat("not converging: ", remaining, " documents in the last pass after ",
                             absl::FormatDuration(config.catch_up_max), " (catch_up_threshold ",
                             config.catch_up_threshold,
                             "); operator decides: throttle writes, resume or abort");
  }
  return d;
}

bool MoveMachine::StallExceeded(const v1::Move& move, int64_t now_ms,
                                const MigrationConfig& config) {
  return cutover::StallExceeded(move.paused_at_ms(), now_ms, config.max_write_stall);
}

bool MoveMachine::MayRetryAfterStall(const v1::Move& move, const MigrationConfig& config) {
  return move.stall_retries() < config.max_stall_retries;
}

bool MoveMachine::DrainTimedOut(const v1::Move& move, int64_t now_ms,
                                const MigrationConfig& config) {
  return move.paused_at_ms() > 0 &&
         absl::Milliseconds(now_ms - move.paused_at_ms()) >= config.drain_timeout;
}

std::set<std::string> MoveMachine::CutoverNodes(const v1::Move& move) {
  std::set<std::string> out(move.old_owners().begin(), move.old_owners().end());
  out.insert(move.new_owners().begin(), move.new_owners().end());
  out.insert(move.sources().begin(), move.sources().end());
  return out;
}

bool MoveMachine::MayStartCutover(const v1::Move& move, const std::map<std::string, uint64_t>& busy,
                                  uint64_t limit) {
  if (limit == 0) return true;
  for (const auto& n : CutoverNodes(move)) {
    auto it = busy.find(n);
    if (it != busy.end() && it->second >= limit) return false;
  }
  return true;
}

int64_t MoveMachine::NextCutoverDeadlineMs(int64_t paused_at_ms, bool draining, int64_t now_ms,
                                           const MigrationConfig& config) {
  if (paused_at_ms <= 0) return 0;
  int64_t next = 0;
  auto consider = [&](int64_t at) {
    if (at > now_ms && (next == 0 || at < next)) next = at;
  };
  if (draining) consider(paused_at_ms + absl::ToInt64Milliseconds(config.drain_timeout));
  consider(cutover::StallDeadlineMs(paused_at_ms, config.max_write_stall));
  return next;
}

MoveMachine::JoiningCheck MoveMachine::CheckJoining(
    const v1::Move& move, const google::protobuf::RepeatedPtrField<v1::Watermark>& reread) {
  JoiningCheck c;
  for (const auto& recorded : move.joining()) {
    v1::Watermark now = recorded;
    for (const auto& r : reread) {
      if (r.node() != recorded.node()) continue;
      now.set_incarnation(r.incarnation());
      if (r.incarnation() != recorded.incarnation()) {
        c.changed.push_back(recorded.node());
        absl::StrAppend(&c.reason, c.reason.empty() ? "" : "; ", "joining node ", r.node(),
                        " changed incarnation ", recorded.incarnation(), " -> ", r.incarnation());
      }
    }
    c.joining.push_back(now);
  }
  if (c.changed.empty()) return c;
  if (move.state() < v1::MOVE_ACTIVE) {
    c.next = v1::MOVE_PREPARE;
    absl::StrAppend(&c.reason, ": its copy is gone; unpaused and back to prepare");
  } else {
    c.next = v1::MOVE_RECONCILING;
    absl::StrAppend(&c.reason,
                    ": its copy is gone; leaving owners reconciled into the new "
                    "owners before any delete");
  }
  return c;
}

std::string MoveMachine::JoinedIncarnation(const std::vector<const v1::Move*>& moves,
                                           const std::string& node) {
  std::set<std::string> seen;
  for (const v1::Move* m : moves) {
    if (m->state() != v1::MOVE_DONE) continue;
    for (const auto& j : m->joining()) {
      if (j.node() == node && !j.incarnation().empty()) seen.insert(j.incarnation());
    }
  }
  if (seen.empty()) return "";
  if (seen.size() == 1) return *seen.begin();
  std::string marker = "mixed:";
  for (const auto& i : seen) absl::StrAppend(&marker, " ", i);
  return marker;
}

bool MoveMachine::CleanupDue(const v1::Move& move, int64_t now_ms, const MigrationConfig& config,
                             absl::Duration lease_ttl) {
  // The move enters cleanup once every live worker acked the active epoch, so
  // both clocks start at the state's entry.
  const absl::Duration waited = absl::Milliseconds(now_ms - move.state_since_ms());
  return waited >= lease_ttl && waited >= config.retain_moved_shard;
}

}  // namespace miroir::coordinator
