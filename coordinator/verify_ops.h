// Verify operations (docs/cli.md "Verify"): the pure bookkeeping of one
// operation from the state of its VERIFY tasks. No I/O, no locking: the
// Coordinator calls these inside a Mutate (coordinator/verify.cc) and the unit
// tests call them on hand-built tasks.
//
// An operation is `running` until every shard is settled, then `done` (every
// shard compared; `divergent` says whether the owners agree) or
// `did_not_finish` (some shard was not compared: its task failed for good, or
// vanished, or the operation's deadline passed first). `failed`: the index or
// the generation it compares went away. "Divergent" is a finding about the
// data; "did not finish" is not: nothing is known about those shards.
#ifndef MIROIR_COORDINATOR_VERIFY_OPS_H_
#define MIROIR_COORDINATOR_VERIFY_OPS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "coordinator/cluster_state.h"
#include "miroir/v1/coordinator.pb.h"

namespace miroir::coordinator {

inline constexpr char kVerifyRunning[] = "running";
inline constexpr char kVerifyDone[] = "done";
inline constexpr char kVerifyDidNotFinish[] = "did_not_finish";
inline constexpr char kVerifyFailed[] = "failed";

// The verdict of a finished (done, or failed for good) VERIFY task: the owners'
// counts and digests, consistent when the task is done, found no mismatch, and
// every owner has the same count and digest.
v1::ShardVerdict VerdictOf(const TaskRecord& task);

// Advances a running `op` at `now_ms` from `tasks` (the coordinator's tasks):
// each of its tasks that is done or failed for good (more than `task_retries`
// failures, or not retryable) or gone is settled into a verdict; past the
// deadline every unsettled shard is settled as not finished. When nothing is
// left the operation ends. `generation_exists` false (the index or its
// generation was dropped) ends it `failed`. Returns the task ids to delete
// (settled ones; every remaining one when it ends). Leaves an ended op as is.
std::vector<uint64_t> AdvanceVerify(v1::VerifyOperation* op,
                                    const std::map<uint64_t, TaskRecord>& tasks,
                                    uint64_t task_retries, int64_t now_ms, bool generation_exists);

// The old one-call answer (VerifyResponse) from an operation's verdicts.
v1::VerifyResponse VerifyResponseOf(const v1::VerifyOperation& op);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_VERIFY_OPS_H_
