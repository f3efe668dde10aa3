#include "worker/tasks/task_failure.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace miroir {
namespace {

constexpr absl::string_view kReasonPayload = "type.miroir.v1/TaskFailure";

}  // namespace

absl::Status IncarnationChangedError(absl::string_view what) {
  absl::Status s = absl::FailedPreconditionError(absl::StrCat("incarnation changed: ", what));
  s.SetPayload(kReasonPayload,
               absl::Cord(v1::TaskFailure_Name(v1::TASK_FAILURE_INCARNATION_CHANGED)));
  return s;
}

v1::TaskFailure TaskFailureOf(const absl::Status& status) {
  auto payload = status.GetPayload(kReasonPayload);
  v1::TaskFailure reason = v1::TASK_FAILURE_UNSPECIFIED;
  if (!payload || !v1::TaskFailure_Parse(std::string(*payload), &reason)) {
    return v1::TASK_FAILURE_UNSPECIFIED;
  }
  return reason;
}

}  // namespace miroir
