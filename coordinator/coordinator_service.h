// CoordinatorService: the operator gRPC API (miroir.v1.Coordinator). Thin:
// decodes, validates request shape, calls Coordinator, maps absl::Status to gRPC.
// Thread-safe (gRPC calls it from its pool).
#ifndef MIROIR_COORDINATOR_COORDINATOR_SERVICE_H_
#define MIROIR_COORDINATOR_COORDINATOR_SERVICE_H_

#include <functional>
#include <string>

#include "coordinator/coordinator.h"
#include "miroir/v1/coordinator.grpc.pb.h"

namespace miroir::coordinator {

class CoordinatorService final : public v1::Coordinator::Service {
 public:
  // `leader` is the address reported by GetStatus. `core` must outlive the service.
  CoordinatorService(Coordinator* core, std::string leader)
      : core_(core), leader_(std::move(leader)) {}
  void set_leader(std::string leader) { leader_ = std::move(leader); }
  // Adds what the state backend knows to GetStatus (etcd: the term, every
  // coordinator, the endpoints' health). REQUIRES: set before serving.
  using ControlPlaneStatus = std::function<void(v1::GetStatusResponse*)>;
  void set_control_plane_status(ControlPlaneStatus fn) { control_plane_ = std::move(fn); }

  grpc::Status InitCluster(grpc::ServerContext*, const v1::InitClusterRequest*,
                           v1::InitClusterResponse*) override;
  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*,
                         v1::GetStatusResponse*) override;
  grpc::Status ListNodes(grpc::ServerContext*, const v1::ListNodesRequest*,
                         v1::ListNodesResponse*) override;
  grpc::Status MarkNodeFailed(grpc::ServerContext*, const v1::MarkNodeFailedRequest*,
                              v1::MarkNodeFailedResponse*) override;
  grpc::Status ForgetNode(grpc::ServerContext*, const v1::ForgetNodeRequest*,
                          v1::ForgetNodeResponse*) override;
  grpc::Status CreateIndex(grpc::ServerContext*, const v1::CreateIndexRequest*,
                           v1::CreateIndexResponse*) override;
  grpc::Status ListIndexes(grpc::ServerContext*, const v1::ListIndexesRequest*,
                           v1::ListIndexesResponse*) override;
  grpc::Status GetIndex(grpc::ServerContext*, const v1::GetIndexRequest*,
                        v1::GetIndexResponse*) override;
  grpc::Status SetAlias(grpc::ServerContext*, const v1::SetAliasRequest*,
                        v1::SetAliasResponse*) override;
  grpc::Status RemoveAlias(grpc::ServerContext*, const v1::RemoveAliasRequest*,
                           v1::SetAliasResponse*) override;
  grpc::Status CreatePlan(grpc::ServerContext*, const v1::CreatePlanRequest*,
                          v1::CreatePlanResponse*) override;
  grpc::Status GetPlan(grpc::ServerContext*, const v1::GetPlanRequest*,
                       v1::GetPlanResponse*) override;
  grpc::Status ListPlans(grpc::ServerContext*, const v1::ListPlansRequest*,
                         v1::ListPlansResponse*) override;
  grpc::Status WatchPlan(grpc::ServerContext*, const v1::WatchPlanRequest*,
                         grpc::ServerWriter<v1::WatchPlanResponse>*) override;
  grpc::Status PausePlan(grpc::ServerContext*, const v1::PlanIdRequest*,
                         v1::GetPlanResponse*) override;
  grpc::Status ResumePlan(grpc::ServerContext*, const v1::PlanIdRequest*,
                          v1::GetPlanResponse*) override;
  grpc::Status AbortPlan(grpc::ServerContext*, const v1::PlanIdRequest*,
                         v1::GetPlanResponse*) override;
  grpc::Status CheckWindow(grpc::ServerContext*, const v1::CheckWindowRequest*,
                           v1::CheckWindowResponse*) override;
  grpc::Status Verify(grpc::ServerContext*, const v1::VerifyRequest*, v1::VerifyResponse*) override;
  grpc::Status StartVerify(grpc::ServerContext*, const v1::StartVerifyRequest*,
                           v1::VerifyOperation*) override;
  grpc::Status GetVerify(grpc::ServerContext*, const v1::GetVerifyRequest*,
                         v1::GetVerifyResponse*) override;
  grpc::Status CheckCluster(grpc::ServerContext*, const v1::CheckClusterRequest*,
                            v1::CheckClusterResponse*) override;
  grpc::Status UpdatePlan(grpc::ServerContext*, const v1::UpdatePlanRequest*,
                          v1::GetPlanResponse*) override;
  grpc::Status PauseAllPlans(grpc::ServerContext*, const v1::PauseAllPlansRequest*,
                             v1::PlansChangedResponse*) override;
  grpc::Status ResumeAllPlans(grpc::ServerContext*, const v1::ResumeAllPlansRequest*,
                              v1::PlansChangedResponse*) override;
  grpc::Status CutoverPlan(grpc::ServerContext*, const v1::CutoverPlanRequest*,
                           v1::GetPlanResponse*) override;
  grpc::Status GetConfig(grpc::ServerContext*, const v1::GetConfigRequest*,
                         v1::GetConfigResponse*) override;
  grpc::Status ReloadConfig(grpc::ServerContext*, const v1::ReloadConfigRequest*,
                            v1::ReloadConfigResponse*) override;
  // Takes the copy into a temporary file in the data dir, streams it, removes it.
  grpc::Status Backup(grpc::ServerContext*, const v1::BackupRequest*,
                      grpc::ServerWriter<v1::BackupChunk>*) override;

 private:
  Coordinator* const core_;
  std::string leader_;
  ControlPlaneStatus control_plane_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_COORDINATOR_SERVICE_H_
