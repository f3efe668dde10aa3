#include "ctl/coordinator_client.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"

namespace miroir::ctl {

std::string ResolveCoordinator(const std::string& coordinators, absl::Duration timeout,
                               std::string* no_leader) {
  const std::vector<std::string> list = SplitAddressList(coordinators);
  if (list.empty()) return coordinators;
  if (list.size() == 1) return list.front();
  // Every coordinator answers GetStatus (standbys from their copy of the model)
  // naming the leader; the first answer that names one in the list decides.
  const absl::Duration probe = std::min(timeout, absl::Seconds(2));
  int answered = 0;
  int etcd_endpoints = 0;
  int etcd_healthy = -1;  // the most any answer saw
  for (const std::string& a : list) {
    auto stub = miroir::v1::Coordinator::NewStub(MakeChannel(a));
    grpc::ClientContext call;
    call.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(absl::ToInt64Milliseconds(probe)));
    miroir::v1::GetStatusRequest req;
    miroir::v1::GetStatusResponse resp;
    if (!stub->GetStatus(&call, req, &resp).ok()) continue;
    ++answered;
    if (resp.leader().empty()) {
      int healthy = 0;
      for (const auto& e : resp.etcd()) healthy += e.healthy() ? 1 : 0;
      if (healthy > etcd_healthy) etcd_healthy = healthy;
      etcd_endpoints = std::max(etcd_endpoints, resp.etcd_size());
      continue;
    }
    if (std::find(list.begin(), list.end(), resp.leader()) != list.end()) return resp.leader();
    return a;  // the leader advertises an address not in the list: ask this one
  }
  if (no_leader != nullptr && answered > 0) {
    *no_leader = absl::StrCat("no coordinator leads: ", answered, " of ", list.size(),
                              " answered, none names a leader");
    if (etcd_endpoints > 0) {
      absl::StrAppend(no_leader, "; etcd: ", etcd_healthy, " of ", etcd_endpoints,
                      " endpoints healthy");
      if (2 * etcd_healthy <= etcd_endpoints) {
        absl::StrAppend(no_leader,
                        ", no quorum: no coordinator can be elected or commit until etcd has "
                        "its majority back (docs/runbook.md)");
      }
    }
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
      return absl::UnavailableError(absl::StrCat("coordinator ", ctx.coordinator,
                                                 " unavailable: ", st.message(),
                                                 ctx.no_leader.empty() ? "" : "; ", ctx.no_leader));
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
