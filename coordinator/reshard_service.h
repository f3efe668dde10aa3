// ReshardService: miroir.v1.Reshard, hosted by the coordinator. Thin: calls the
// ReshardRunner and maps absl::Status to gRPC codes. Thread-safe.
#ifndef MIROIR_COORDINATOR_RESHARD_SERVICE_H_
#define MIROIR_COORDINATOR_RESHARD_SERVICE_H_

#include "coordinator/coordinator.h"
#include "miroir/v1/reshard.grpc.pb.h"

namespace miroir::coordinator {

class ReshardService final : public v1::Reshard::Service {
 public:
  // `core` must outlive the service.
  explicit ReshardService(Coordinator* core) : core_(core) {}

  grpc::Status Start(grpc::ServerContext*, const v1::ReshardStartRequest* req,
                     v1::ReshardStartResponse* resp) override;
  grpc::Status Status(grpc::ServerContext*, const v1::ReshardIndexRequest* req,
                      v1::ReshardStatusResponse* resp) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const v1::ReshardIndexRequest* req,
                     grpc::ServerWriter<v1::ReshardStatusResponse>* writer) override;
  grpc::Status Abort(grpc::ServerContext*, const v1::ReshardIndexRequest* req,
                     v1::ReshardStatusResponse* resp) override;
  grpc::Status Rollback(grpc::ServerContext*, const v1::ReshardIndexRequest* req,
                        v1::ReshardStatusResponse* resp) override;
  grpc::Status Complete(grpc::ServerContext*, const v1::ReshardIndexRequest* req,
                        v1::ReshardStatusResponse* resp) override;
  grpc::Status Cutover(grpc::ServerContext*, const v1::ReshardCutoverRequest* req,
                       v1::ReshardStatusResponse* resp) override;

 private:
  Coordinator* const core_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_RESHARD_SERVICE_H_
