// The per-shard move state machine of DESIGN §6: the legal transition table,
// transitions as events, and the time-based decisions (catch_up_max,
// max_write_stall, drain_timeout, window wait). Pure: time is passed in (tests use
// ManualClock), no I/O. Safe from any thread (no shared state).
//
//   pending → prepare → dual_write → copying → catching_up → paused → final_delta
//   → active → [reconciling] → cleanup → done;  failed;  aborting → aborted.
#ifndef MIROIR_COORDINATOR_MOVE_MACHINE_H_
#define MIROIR_COORDINATOR_MOVE_MACHINE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/config.h"
#include "miroir/v1/types.pb.h"

namespace miroir::coordinator {

namespace v1 = ::miroir::v1;

class MoveMachine {
 public:
  // Whether `from -> to` is in the transition table.
  static bool IsLegal(v1::MoveState from, v1::MoveState to);
  // done and aborted.
  static bool IsTerminal(v1::MoveState s);
  // Abort is possible (before active, or failed before active).
  static bool CanAbort(const v1::Move& move);

  // Moves `move` to `to` at `now_ms`, recording `reason` and the epoch published
  // with it (0 none). FAILED_PRECONDITION naming both states when illegal; the
  // move is then unchanged.
  static absl::StatusOr<v1::Event> Transition(v1::Move* move, v1::MoveState to,
                                              const std::string& reason, int64_t now_ms,
                                              uint64_t epoch);

  // What to do after a catch-up pass left `remaining` documents.
  enum class CatchUpNext {
    kPause,          // small enough and inside a window (or forced): go to paused
    kAnotherPass,    // run another pass
    kWaitForWindow,  // small enough but outside every window: keep passing, say so
  };
  struct CatchUpDecision {
    CatchUpNext next = CatchUpNext::kAnotherPass;
    std::string message;  // human note for the move (e.g. "not converging: ...")
  };
  // A move with force_cutover set pauses whatever is left and whatever the window.
  static CatchUpDecision AfterCatchUpPass(const v1::Move& move, uint64_t remaining, int64_t now_ms,
                                          const MigrationConfig& config, bool window_open);

  // Whether the cutover that paused at move.paused_at_ms has held writes longer
  // than max_write_stall (steps 4–6 must then unpause and return to catching_up).
  static bool StallExceeded(const v1::Move& move, int64_t now_ms, const MigrationConfig& config);
  // Whether another stall retry is allowed (bounded by max_stall_retries).
  static bool MayRetryAfterStall(const v1::Move& move, const MigrationConfig& config);
  // Whether drain_timeout has passed since the pause was published.
  static bool DrainTimedOut(const v1::Move& move, int64_t now_ms, const MigrationConfig& config);
  // The nodes a move's cutover works on: its old and new owners and its sources.
  static std::set<std::string> CutoverNodes(const v1::Move& move);
  // Whether `move` may start its cutover (pause writes) while `busy` counts the
  // cutovers under way per node: none of its nodes is at `limit` (0: no limit).
  // Concurrent cutovers on one node make each other's fences and final deltas
  // queue in the same store: one at a time per node keeps each stall short.
  static bool MayStartCutover(const v1::Move& move, const std::map<std::string, uint64_t>& busy,
                              uint64_t limit);
  // The first instant after `now_ms` at which time alone moves a cutover that
  // paused writes at `paused_at_ms` on: its drain_timeout while `draining`, its
  // max_write_stall. 0 when none is ahead (or nothing is paused). The runner wakes
  // then rather than at its next tick: a late wake is write stall.
  static int64_t NextCutoverDeadlineMs(int64_t paused_at_ms, bool draining, int64_t now_ms,
                                       const MigrationConfig& config);
  // What a re-read of the joining nodes' incarnations means for the move (DESIGN
  // §6, "A joining node's incarnation"): `changed` lists every node of
  // move.joining whose incarnation in `reread` (a fence's reply) differs from the
  // one recorded at prepare; nodes absent from `reread` are not judged. When one
  // changed, its copy is gone: before active the move goes back to `next` =
  // prepare (unpaused, its copy restarted); from active on it goes to `next` =
  // reconciling (L into N) before any delete, and `joining` is what to record then.
  struct JoiningCheck {
    std::vector<std::string> changed;
    v1::MoveState next = v1::MOVE_STATE_UNSPECIFIED;
    std::string reason;
    std::vector<v1::Watermark> joining;  // move.joining updated with the re-read
  };
  static JoiningCheck CheckJoining(const v1::Move& move,
                                   const google::protobuf::RepeatedPtrField<v1::Watermark>& reread);

  // The incarnation of `node` that the done moves in `moves` copied into it (their
  // recorded joining incarnation): "" when none recorded one; when they disagree
  // (it lost a copy after a move finished), a marker no node ever reports, so the
  // node's next report is an incarnation change (failed and rejoined).
  static std::string JoinedIncarnation(const std::vector<const v1::Move*>& moves,
                                       const std::string& node);

  // Whether cleanup may delete the shard on the leaving nodes: in state cleanup
  // (entered once every live worker acked the active epoch) for retain_moved_shard
  // and for one lease TTL.
  static bool CleanupDue(const v1::Move& move, int64_t now_ms, const MigrationConfig& config,
                         absl::Duration lease_ttl);
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_MOVE_MACHINE_H_
