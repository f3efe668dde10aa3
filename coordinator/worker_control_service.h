// WorkerControlService: the worker-facing gRPC API (miroir.v1.WorkerControl,
// docs/task-protocol.md). One Session stream per worker: this thread reads, a
// writer thread drains the session's Outbox. Thin over Coordinator.
// Thread-safe (gRPC calls it from its pool).
#ifndef MIROIR_COORDINATOR_WORKER_CONTROL_SERVICE_H_
#define MIROIR_COORDINATOR_WORKER_CONTROL_SERVICE_H_

#include "coordinator/coordinator.h"
#include "miroir/v1/worker_control.grpc.pb.h"

namespace miroir::coordinator {

class WorkerControlService final : public v1::WorkerControl::Service {
 public:
  explicit WorkerControlService(Coordinator* core) : core_(core) {}

  grpc::Status Session(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) override;
  grpc::Status GetView(grpc::ServerContext*, const v1::GetViewRequest*, v1::ClusterView*) override;
  grpc::Status ReportMisses(grpc::ServerContext*, const v1::MissReport*,
                            v1::MissReportAck*) override;

 private:
  Coordinator* const core_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_WORKER_CONTROL_SERVICE_H_
