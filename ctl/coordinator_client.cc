#include "ctl/coordinator_client.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"

namespace miroir::ctl {

namespace {

// What an answer says of etcd when a majority of its endpoints is unhealthy:
// no coordinator can be elected or commit. "" otherwise.
std::string EtcdQuorumNote(const miroir::v1::GetStatusResponse& resp) {
  int healthy = 0;
  for (const auto& e : resp.etcd()) healthy += e.healthy() ? 1 : 0;
  if (resp.etcd_size() == 0 || 2 * healthy > resp.etcd_size()) return "";
  return absl::StrCat("etcd: ", healthy, " of ", resp.etcd_size(),
                      " endpoints healthy, no quorum: no coordinator can be elected or commit "
                      "until etcd has its majority back (docs/runbook.md)");
}

}  // namespace

std::string ResolveCoordinator(const std::string& coordinators, absl::Duration timeout,
                               std::string* no_leader) {
  const std::vector<std::string> list = SplitAddressList(coordinators);
  if (list.empty()) return coordinators;
  if (list.size() == 1) return list.front();
  // Every coordinator answers GetStatus (standbys from their copy of the model)
  // naming the leader; the first answer that names one in the list decides.
  const absl::Duration probe = std::min(timeout, absl::Seconds(2));
  int answered = 0;
  std::string first_answered;  // serves reads when none leads (a standby)
  std::string etcd_note;
  auto note = [&](const std::string& text) {
    if (no_leader != nullptr) *no_leader = text;
  };
  for (const std::string& a : list) {
    auto stub = miroir::v1::Coordinator::NewStub(MakeChannel(a));
    grpc::ClientContext call;
    call.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(absl::ToInt64Milliseconds(probe)));
    miroir::v1::GetStatusRequest req;
    miroir::v1::GetStatusResponse resp;
    if (!stub->GetStatus(&call, req, &resp).ok()) continue;
    if (answered++ == 0) first_answered = a;
    if (etcd_note.empty()) etcd_note = EtcdQuorumNote(resp);
    if (resp.leader().empty()) continue;
    // The leader named may be gone while etcd cannot expire its key (no quorum):
    // a call that then finds it unavailable says so.
    if (resp.leader() != a && !etcd_note.empty()) {
      note(absl::StrCat(a, " names ", resp.leader(), " as leader; ", etcd_note));
    }
    if (std::find(list.begin(), list.end(), resp.leader()) != list.end()) return resp.leader();
    return a;  // the leader advertises an address not in the list: ask this one
  }
  if (answered > 0) {
    note(absl::StrCat("no coordinator leads: ", answered, " of ", list.size(),
                      " answered, none names a leader", etcd_note.empty() ? "" : "; ", etcd_note));
    return first_answered;
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
