// Task errors the coordinator acts on by kind rather than by text: an executor
// returns one of these, and the task runner puts its kind in TaskFailed.reason
// (proto/miroir/v1/worker_control.proto). The kind travels as a payload of the
// absl::Status: return the error as it is (a wrapper that rebuilds the status
// from its code and message drops the kind).
// Pure; safe from any thread.
#ifndef MIROIR_WORKER_TASKS_TASK_FAILURE_H_
#define MIROIR_WORKER_TASKS_TASK_FAILURE_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "miroir/v1/worker_control.pb.h"

namespace miroir {

// FAILED_PRECONDITION "incarnation changed: <what>": a source's change sequence
// is gone (DESIGN §5); TaskFailed carries TASK_FAILURE_INCARNATION_CHANGED.
absl::Status IncarnationChangedError(absl::string_view what);

// The reason `status` carries; TASK_FAILURE_UNSPECIFIED for any other error.
v1::TaskFailure TaskFailureOf(const absl::Status& status);

}  // namespace miroir

#endif  // MIROIR_WORKER_TASKS_TASK_FAILURE_H_
