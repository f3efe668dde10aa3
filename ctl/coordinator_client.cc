#include "ctl/coordinator_client.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"

namespace miroir::ctl {

std::string ResolveCoordinator(const std::string& coordinators, absl::Duration timeout) {
  const std::vector<std::string> list = SplitAddressList(coordinators);
  if (list.empty()) return coordinators;
  if (list.size() == 1) return list.front();
  // Every coordinator answers GetStatus (standbys from their copy of the model)
  // naming the leader; the first answer that names one in the list decides.
  const absl::Duration probe = std::min(timeout, absl::Seconds(2));
  for (const std::string& a : list) {
    auto stub = miroir::v1::Coordinator::NewStub(MakeChannel(a));
    grpc::ClientContext call;
    call.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(absl::ToInt64Milliseconds(probe)));
    miroir::v1::GetStatusRequest req;
    miroir::v1::GetStatusResponse resp;
    if (!stub->GetStatus(&call, req, &resp).ok() || resp.leader().empty()) continue;
    if (std::find(list.begin(), list.end(), resp.leader()) != list.end()) return resp.leader();
    return a;  // the leader advertises an address not in the list: ask this one
  }
  return list.front();
}

std::shared_ptr<grpc::Channel> NewCoordinatorChannel(const CtlContext& ctx) {
  return MakeChannel(ctx.coordinator);
}

std::unique_ptr<miroir::v1::Coordinator::Stub> NewCoordinatorStub(const CtlContext& ctx) {
  return miroir::v1::Coordinator::NewStub(NewCoordinatorChannel(ctx));
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
      return absl::UnimplementedError(absl::StrCat(
          "coordinator ", ctx.coordinator, " does not implement this call: ", st.message()));
    default:
      return st;
  }
}

}  // namespace miroir::ctl
