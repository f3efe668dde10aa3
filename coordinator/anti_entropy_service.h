// AntiEntropyService: miroir.v1.AntiEntropy, hosted by the coordinator. Thin:
// calls the AntiEntropyRunner and maps absl::Status to gRPC codes. Thread-safe.
#ifndef MIROIR_COORDINATOR_ANTI_ENTROPY_SERVICE_H_
#define MIROIR_COORDINATOR_ANTI_ENTROPY_SERVICE_H_

#include "coordinator/coordinator.h"
#include "miroir/v1/anti_entropy.grpc.pb.h"

namespace miroir::coordinator {

class AntiEntropyService final : public v1::AntiEntropy::Service {
 public:
  // `core` must outlive the service.
  explicit AntiEntropyService(Coordinator* core) : core_(core) {}

  grpc::Status Run(grpc::ServerContext*, const v1::AntiEntropyRunRequest* req,
                   v1::AntiEntropyRunResponse* resp) override;
  grpc::Status Status(grpc::ServerContext*, const v1::AntiEntropyStatusRequest* req,
                      v1::AntiEntropyStatusResponse* resp) override;

 private:
  Coordinator* const core_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_ANTI_ENTROPY_SERVICE_H_
