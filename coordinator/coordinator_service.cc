#include "coordinator/coordinator_service.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_server.h"
#include "coordinator/audit.h"

namespace miroir::coordinator {

grpc::Status CoordinatorService::InitCluster(grpc::ServerContext* ctx,
                                             const v1::InitClusterRequest* req,
                                             v1::InitClusterResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/InitCluster");
  auto epoch = core_->InitCluster(req->fleet_yaml(), req->source_name());
  if (!epoch.ok()) return ToGrpc(epoch.status());
  resp->set_epoch(*epoch);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetStatus(grpc::ServerContext*, const v1::GetStatusRequest* req,
                                           v1::GetStatusResponse* resp) {
  if (req->recent_actions() > Coordinator::kMaxRecentActions) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("recent_actions: ", req->recent_actions(), " is above ",
                                     Coordinator::kMaxRecentActions));
  }
  *resp = core_->Status(leader_, req->recent_actions());
  if (control_plane_) control_plane_(resp);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ListNodes(grpc::ServerContext*, const v1::ListNodesRequest*,
                                           v1::ListNodesResponse* resp) {
  for (auto& n : core_->ListNodes()) *resp->add_nodes() = std::move(n);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::MarkNodeFailed(grpc::ServerContext* ctx,
                                                const v1::MarkNodeFailedRequest* req,
                                                v1::MarkNodeFailedResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/MarkNodeFailed");
  auto r = core_->MarkNodeFailed(req->id());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ForgetNode(grpc::ServerContext* ctx,
                                            const v1::ForgetNodeRequest* req,
                                            v1::ForgetNodeResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/ForgetNode");
  auto r = core_->ForgetNode(req->id());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::CreateIndex(grpc::ServerContext* ctx,
                                             const v1::CreateIndexRequest* req,
                                             v1::CreateIndexResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/CreateIndex");
  auto r = core_->CreateIndex(req->name(), req->shards(), req->rf());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ListIndexes(grpc::ServerContext*, const v1::ListIndexesRequest*,
                                             v1::ListIndexesResponse* resp) {
  for (auto& x : core_->ListIndexes()) *resp->add_indexes() = std::move(x);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetIndex(grpc::ServerContext*, const v1::GetIndexRequest* req,
                                          v1::GetIndexResponse* resp) {
  auto r = core_->GetIndex(req->name());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::SetAlias(grpc::ServerContext* ctx, const v1::SetAliasRequest* req,
                                          v1::SetAliasResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/SetAlias");
  auto r = core_->SetAlias(req->alias(), req->index());
  if (!r.ok()) return ToGrpc(r.status());
  resp->set_epoch(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::RemoveAlias(grpc::ServerContext* ctx,
                                             const v1::RemoveAliasRequest* req,
                                             v1::SetAliasResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/RemoveAlias");
  auto r = core_->RemoveAlias(req->alias());
  if (!r.ok()) return ToGrpc(r.status());
  resp->set_epoch(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::CreatePlan(grpc::ServerContext* ctx,
                                            const v1::CreatePlanRequest* req,
                                            v1::CreatePlanResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/CreatePlan");
  auto r = core_->CreatePlan(*req);
  if (!r.ok()) return ToGrpc(r.status());
  *resp->mutable_plan() = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetPlan(grpc::ServerContext*, const v1::GetPlanRequest* req,
                                         v1::GetPlanResponse* resp) {
  auto r = core_->GetPlan(req->id());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ListPlans(grpc::ServerContext*, const v1::ListPlansRequest*,
                                           v1::ListPlansResponse* resp) {
  for (auto& p : core_->ListPlans()) *resp->add_plans() = std::move(p);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::WatchPlan(grpc::ServerContext* ctx,
                                           const v1::WatchPlanRequest* req,
                                           grpc::ServerWriter<v1::WatchPlanResponse>* writer) {
  uint64_t seen = core_->ChangeCounter();
  auto first = core_->GetPlan(req->id());
  if (!first.ok()) return ToGrpc(first.status());
  v1::WatchPlanResponse msg;
  *msg.mutable_plan() = first->plan();
  if (!writer->Write(msg)) return grpc::Status::OK;
  size_t events_sent = static_cast<size_t>(first->history_size());
  bool done = PlanEnded(first->plan().state());
  while (!done && !ctx->IsCancelled()) {
    seen = core_->WaitForChange(seen, absl::Milliseconds(500));
    auto cur = core_->GetPlan(req->id());
    if (!cur.ok()) return ToGrpc(cur.status());
    bool sent = false;
    for (; events_sent < static_cast<size_t>(cur->history_size()); ++events_sent) {
      v1::WatchPlanResponse m;
      *m.mutable_plan() = cur->plan();
      *m.mutable_event() = cur->history(static_cast<int>(events_sent));
      if (!writer->Write(m)) return grpc::Status::OK;
      sent = true;
    }
    done = PlanEnded(cur->plan().state());
    // The events are committed before the plan's state is applied in memory, so
    // the last event may have gone out with the state before it: end with the
    // final state.
    if (done && !sent) {
      v1::WatchPlanResponse m;
      *m.mutable_plan() = cur->plan();
      if (!writer->Write(m)) return grpc::Status::OK;
    }
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::PausePlan(grpc::ServerContext* ctx, const v1::PlanIdRequest* req,
                                           v1::GetPlanResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/PausePlan");
  auto r = core_->PausePlan(req->id());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ResumePlan(grpc::ServerContext* ctx, const v1::PlanIdRequest* req,
                                            v1::GetPlanResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/ResumePlan");
  auto r = core_->ResumePlan(req->id());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::AbortPlan(grpc::ServerContext* ctx, const v1::PlanIdRequest* req,
                                           v1::GetPlanResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/AbortPlan");
  auto r = core_->AbortPlan(req->id());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::CheckWindow(grpc::ServerContext*,
                                             const v1::CheckWindowRequest* req,
                                             v1::CheckWindowResponse* resp) {
  auto r = core_->CheckWindow(req->schedule_window());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Verify(grpc::ServerContext* ctx, const v1::VerifyRequest* req,
                                        v1::VerifyResponse* resp) {
  absl::Duration timeout = absl::Minutes(5);
  if (ctx->deadline() != std::chrono::system_clock::time_point::max()) {
    timeout = absl::FromChrono(ctx->deadline() - std::chrono::system_clock::now());
  }
  auto r = core_->Verify(req->index(), timeout);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::StartVerify(grpc::ServerContext* ctx,
                                             const v1::StartVerifyRequest* req,
                                             v1::VerifyOperation* resp) {
  ScopedCaller caller(ctx, "Coordinator/StartVerify");
  auto r = core_->StartVerify(req->index(), absl::Milliseconds(req->timeout_ms()));
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetVerify(grpc::ServerContext*, const v1::GetVerifyRequest* req,
                                           v1::GetVerifyResponse* resp) {
  auto r = core_->GetVerify(req->id());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::CheckCluster(grpc::ServerContext*, const v1::CheckClusterRequest*,
                                              v1::CheckClusterResponse* resp) {
  *resp = core_->CheckCluster();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::UpdatePlan(grpc::ServerContext* ctx,
                                            const v1::UpdatePlanRequest* req,
                                            v1::GetPlanResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/UpdatePlan");
  auto r = core_->UpdatePlan(*req);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::PauseAllPlans(grpc::ServerContext* ctx,
                                               const v1::PauseAllPlansRequest*,
                                               v1::PlansChangedResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/PauseAllPlans");
  auto r = core_->PauseAllPlans();
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ResumeAllPlans(grpc::ServerContext* ctx,
                                                const v1::ResumeAllPlansRequest*,
                                                v1::PlansChangedResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/ResumeAllPlans");
  auto r = core_->ResumeAllPlans();
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::CutoverPlan(grpc::ServerContext* ctx,
                                             const v1::CutoverPlanRequest* req,
                                             v1::GetPlanResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/CutoverPlan");
  auto r = core_->CutoverPlan(req->id(), req->force());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetConfig(grpc::ServerContext*, const v1::GetConfigRequest*,
                                           v1::GetConfigResponse* resp) {
  *resp = core_->GetConfig();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ReloadConfig(grpc::ServerContext* ctx,
                                              const v1::ReloadConfigRequest*,
                                              v1::ReloadConfigResponse* resp) {
  ScopedCaller caller(ctx, "Coordinator/ReloadConfig");
  auto r = core_->ReloadConfig();
  if (!r.ok()) return ToGrpc(r.status());
  core_->RecordAudit("configuration reloaded");
  *resp = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Backup(grpc::ServerContext* ctx, const v1::BackupRequest*,
                                        grpc::ServerWriter<v1::BackupChunk>* writer) {
  ScopedCaller caller(ctx, "Coordinator/Backup");
  const std::string path =
      absl::StrCat(core_->config().data_dir, "/backup-", absl::ToUnixNanos(absl::Now()), ".tmp");
  auto epoch = core_->BackupTo(path);
  if (!epoch.ok()) return ToGrpc(epoch.status());
  core_->RecordAudit(absl::StrCat("state backup at epoch ", *epoch));
  std::error_code ec;
  const uint64_t total = std::filesystem::file_size(path, ec);
  std::ifstream in(path, std::ios::binary);
  grpc::Status result = grpc::Status::OK;
  if (ec || !in) {
    result = grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat("backup: cannot read ", path));
  }
  constexpr size_t kChunk = 1 << 20;
  std::string buf(kChunk, '\0');
  uint64_t sent = 0;
  while (result.ok() && !ctx->IsCancelled()) {
    in.read(buf.data(), static_cast<std::streamsize>(kChunk));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0 && sent > 0) break;
    v1::BackupChunk chunk;
    chunk.set_data(buf.data(), n);
    chunk.set_total_bytes(total);
    chunk.set_epoch(*epoch);
    if (!writer->Write(chunk)) break;
    sent += n;
    if (n < kChunk) break;
  }
  in.close();
  std::filesystem::remove(path, ec);
  return result;
}

}  // namespace miroir::coordinator
