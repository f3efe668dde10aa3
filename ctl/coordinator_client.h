// How miroir-ctl talks to miroir-coordinator: the leader of --coordinator found
// once, a stub on it, a call context bounded by --timeout, and gRPC errors turned
// into one-line statuses (the code is kept, so INVALID_ARGUMENT still exits 2).
// Main thread only.
#ifndef MIROIR_CTL_COORDINATOR_CLIENT_H_
#define MIROIR_CTL_COORDINATOR_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ctl/output.h"
#include "miroir/v1/coordinator.grpc.pb.h"

namespace miroir::ctl {

// The coordinator to talk to, from --coordinator: the address itself, or with a
// comma-separated list the leader named by the first entry whose GetStatus
// names one in the list (standbys answer from their copy of the model), each
// probed for at most min(timeout, 2s). When none names a leader: the first that
// answered (a standby serves reads), and `no_leader` (when given) says why with
// what the answers said of etcd ("no coordinator leads: 2 of 3 answered, none
// names a leader; etcd: 1 of 3 endpoints healthy, no quorum ..."), which an
// UNAVAILABLE error then carries; the first listed when none answers. Called
// once, after SetClientSecurity.
std::string ResolveCoordinator(const std::string& coordinators, absl::Duration timeout,
                               std::string* no_leader = nullptr);

// A channel to ctx.coordinator (already resolved to one address), for every
// service it serves (Coordinator, Reshard, AntiEntropy), and a stub on it.
std::shared_ptr<grpc::Channel> NewCoordinatorChannel(const CtlContext& ctx);
std::unique_ptr<miroir::v1::Coordinator::Stub> NewCoordinatorStub(const CtlContext& ctx);

// Sets the deadline from --timeout (unless `unbounded` and --timeout was not given).
void PrepareCall(const CtlContext& ctx, grpc::ClientContext* call, bool unbounded = false);

// The status of a finished call, with the coordinator named when it could not be
// reached or the deadline passed.
absl::Status CallStatus(const CtlContext& ctx, const grpc::Status& s);

// One unary call, e.g. CallCoordinator(ctx, &Coordinator::Stub::GetStatus, req, &resp).
template <typename Req, typename Resp>
absl::Status CallCoordinator(
    const CtlContext& ctx,
    grpc::Status (miroir::v1::Coordinator::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
    const Req& req, Resp* resp) {
  auto stub = NewCoordinatorStub(ctx);
  grpc::ClientContext call;
  PrepareCall(ctx, &call);
  return CallStatus(ctx, ((*stub).*method)(&call, req, resp));
}

}  // namespace miroir::ctl

#endif  // MIROIR_CTL_COORDINATOR_CLIENT_H_
