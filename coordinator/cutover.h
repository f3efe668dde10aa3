// The cutover decisions a move (DESIGN §6) and a reshard's swap (DESIGN §7) share:
// when held writes have stalled too long, how many old owners a fence caught with
// the watermark the copy read, which sources a final delta may read, and whether
// the workers' acks of a published epoch may be trusted. Pure: time and acks are
// passed in; no I/O, no shared state, safe from any thread. Used by
// coordinator/move_stepper.cc and coordinator/reshard_stepper.cc.
#ifndef MIROIR_COORDINATOR_CUTOVER_H_
#define MIROIR_COORDINATOR_CUTOVER_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "miroir/v1/types.pb.h"

namespace miroir::coordinator::cutover {

namespace v1 = ::miroir::v1;
using Strings = std::vector<std::string>;
using Watermarks = google::protobuf::RepeatedPtrField<v1::Watermark>;

// Whether writes paused at `paused_at_ms` (0: not paused) have been held longer
// than `max_write_stall` at `now_ms`. Strict: exactly max_write_stall is not yet
// a stall, so StallDeadlineMs is the first instant this is true.
bool StallExceeded(int64_t paused_at_ms, int64_t now_ms, absl::Duration max_write_stall);

// The first whole millisecond at which StallExceeded(paused_at_ms, ·) holds: the
// instant the runner must wake (a late wake is write stall). REQUIRES: paused_at_ms > 0.
int64_t StallDeadlineMs(int64_t paused_at_ms, absl::Duration max_write_stall);

// `nodes` without the failed ones, order kept.
template <typename Range>
Strings WithoutFailed(const Range& nodes, const std::set<std::string>& failed) {
  Strings out;
  for (const auto& n : nodes) {
    if (!failed.count(n)) out.push_back(n);
  }
  return out;
}

// How many of the copy's watermarks `copied` a fence's reply `fences` caught with
// the same incarnation (the copy's position is still that node's sequence). With
// `only` non-null, watermarks of nodes outside `*only` do not count.
uint32_t FencedWithCurrentWatermark(const Watermarks& copied, const Watermarks& fences,
                                    const Strings* only = nullptr);

// The watermark of `node` in `marks` (the last one), or null.
const v1::Watermark* MarkOf(const Watermarks& marks, const std::string& node);

// The nodes of `fences` that are among `sources`, in fence order: what a final
// delta may read (a source the fence did not reach may still take writes).
Strings FencedSources(const Watermarks& fences, const Strings& sources);

// "Every live worker acked epoch E": answered by the worker registry in the
// coordinator, by a table in tests.
using AckLookup = std::function<bool(uint64_t epoch)>;

// Whether what waited for the acks of `wait_epoch` (0: nothing published) may go
// on: acks are trusted only once `acks_ready` (one lease TTL plus max_clock_drift
// after the coordinator started, so a worker acking an older view has expired).
bool Acked(bool acks_ready, uint64_t wait_epoch, const AckLookup& all_live_acked);

}  // namespace miroir::coordinator::cutover

#endif  // MIROIR_COORDINATOR_CUTOVER_H_
