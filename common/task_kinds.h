// What a task is, read from the task itself, for both sides of the task protocol
// (docs/task-protocol.md): the coordinator leases a final delta as part of a
// cutover, the worker runs it without yielding to cutovers.
#ifndef MIROIR_COMMON_TASK_KINDS_H_
#define MIROIR_COMMON_TASK_KINDS_H_

#include "miroir/v1/types.pb.h"

namespace miroir {

// A cutover's final delta: FINAL_DELTA, or a RESHARD_DELTA that copies up to F
// (in `upto`, or per shard in a node-batched task). A RESHARD_DELTA without F is
// a catch-up pass.
inline bool IsFinalDelta(const v1::Task& t) {
  if (t.kind() == v1::TASK_FINAL_DELTA) return true;
  if (t.kind() != v1::TASK_RESHARD_DELTA) return false;
  if (!t.upto().empty()) return true;
  for (const auto& b : t.node_shards()) {
    if (!b.upto().node().empty()) return true;
  }
  return false;
}

}  // namespace miroir

#endif  // MIROIR_COMMON_TASK_KINDS_H_
