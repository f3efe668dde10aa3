#include "ctl/coordinator_client.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"

namespace miroir::ctl {

std::unique_ptr<miroir::v1::Coordinator::Stub> NewCoordinatorStub(const CtlContext& ctx) {
  return miroir::v1::Coordinator::NewStub(MakeChannel(ctx.coordinator));
}

void PrepareCall(const CtlContext& ctx, grpc::ClientContext* call, bool unbounded) {
  if (unbounded && !ctx.timeout_set) return;
  call->set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(absl::ToInt64Milliseconds(ctx.timeout)));
}

absl::Status CallStatus(const CtlContext& ctx, const grpc::Status& s) {
  absl::Status st = FromGrpc(s);
  switch (st.code()) {
    case absl::StatusCode::kUnavailable:
      return absl::UnavailableError(
          absl::StrCat("coordinator ", ctx.coordinator, " unavailable: ", st.message()));
    case absl::StatusCode::kDeadlineExceeded:
      return absl::DeadlineExceededError(absl::StrCat(
          "coordinator ", ctx.coordinator, " did not answer within --timeout: ", st.message()));
    case absl::StatusCode::kUnimplemented:
      return absl::UnimplementedError(absl::StrCat("coordinator ", ctx.coordinator,
                                                   " does not implement this call: ", st.message()));
    default:
      return st;
  }
}

}  // namespace miroir::ctl
