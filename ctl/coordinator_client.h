// How miroir-ctl talks to miroir-coordinator: a stub on --coordinator, a call
// context bounded by --timeout, and gRPC errors turned into one-line statuses
// (the code is kept, so INVALID_ARGUMENT still exits 2). Main thread only.
#ifndef MIROIR_CTL_COORDINATOR_CLIENT_H_
#define MIROIR_CTL_COORDINATOR_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "ctl/output.h"
#include "miroir/v1/coordinator.grpc.pb.h"

namespace miroir::ctl {

// A channel to the coordinator that leads (the first of a comma-separated
// --coordinator list that answers), for every service it serves (Coordinator,
// Reshard, AntiEntropy).
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
