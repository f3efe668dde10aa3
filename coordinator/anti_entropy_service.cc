#include "coordinator/anti_entropy_service.h"

#include "common/grpc_server.h"
#include "coordinator/anti_entropy_runner.h"
#include "coordinator/audit.h"

namespace miroir::coordinator {

grpc::Status AntiEntropyService::Run(grpc::ServerContext* ctx, const v1::AntiEntropyRunRequest* req,
                                     v1::AntiEntropyRunResponse* resp) {
  ScopedCaller caller(ctx, "AntiEntropy/Run");
  auto run = core_->anti_entropy().Start(*req);
  if (!run.ok()) return ToGrpc(run.status());
  *resp->mutable_run() = std::move(*run);
  return grpc::Status::OK;
}

grpc::Status AntiEntropyService::Status(grpc::ServerContext*,
                                        const v1::AntiEntropyStatusRequest* req,
                                        v1::AntiEntropyStatusResponse* resp) {
  *resp = core_->anti_entropy().Status(req->run_id());
  return grpc::Status::OK;
}

}  // namespace miroir::coordinator
