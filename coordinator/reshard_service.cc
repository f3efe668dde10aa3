#include "coordinator/reshard_service.h"

#include "common/grpc_server.h"
#include "coordinator/audit.h"
#include "coordinator/reshard_machine.h"
#include "coordinator/reshard_runner.h"

namespace miroir::coordinator {
namespace {

template <typename T, typename Out>
grpc::Status Answer(absl::StatusOr<T> r, Out* out) {
  if (!r.ok()) return ToGrpc(r.status());
  *out = std::move(*r);
  return grpc::Status::OK;
}

// A reshard that will not move again by itself: ended, or failed (waiting for the
// operator's abort or rollback), or in retention (waiting for complete or the timer).
bool Settled(const v1::ReshardRecord& r) {
  return ReshardMachine::IsTerminal(r.state()) || r.state() == v1::RESHARD_FAILED ||
         r.state() == v1::RESHARD_RETENTION;
}

}  // namespace

grpc::Status ReshardService::Start(grpc::ServerContext* ctx, const v1::ReshardStartRequest* req,
                                   v1::ReshardStartResponse* resp) {
  ScopedCaller caller(ctx, "Reshard/Start");
  return Answer(core_->reshard().Start(*req), resp);
}

grpc::Status ReshardService::Status(grpc::ServerContext*, const v1::ReshardIndexRequest* req,
                                    v1::ReshardStatusResponse* resp) {
  return Answer(core_->reshard().Status(req->index()), resp);
}

grpc::Status ReshardService::Watch(grpc::ServerContext* ctx, const v1::ReshardIndexRequest* req,
                                   grpc::ServerWriter<v1::ReshardStatusResponse>* writer) {
  uint64_t seen = core_->ChangeCounter();
  auto cur = core_->reshard().Status(req->index());
  if (!cur.ok()) return ToGrpc(cur.status());
  if (!writer->Write(*cur)) return grpc::Status::OK;
  std::string last = cur->SerializeAsString();
  while (!Settled(cur->reshard()) && !ctx->IsCancelled()) {
    seen = core_->WaitForChange(seen, absl::Milliseconds(500));
    cur = core_->reshard().Status(req->index());
    if (!cur.ok()) return ToGrpc(cur.status());
    std::string now = cur->SerializeAsString();
    if (now == last) continue;
    last = std::move(now);
    if (!writer->Write(*cur)) return grpc::Status::OK;
  }
  return grpc::Status::OK;
}

grpc::Status ReshardService::Abort(grpc::ServerContext* ctx, const v1::ReshardIndexRequest* req,
                                   v1::ReshardStatusResponse* resp) {
  ScopedCaller caller(ctx, "Reshard/Abort");
  return Answer(core_->reshard().Abort(req->index()), resp);
}

grpc::Status ReshardService::Rollback(grpc::ServerContext* ctx, const v1::ReshardIndexRequest* req,
                                      v1::ReshardStatusResponse* resp) {
  ScopedCaller caller(ctx, "Reshard/Rollback");
  return Answer(core_->reshard().Rollback(req->index()), resp);
}

grpc::Status ReshardService::Complete(grpc::ServerContext* ctx, const v1::ReshardIndexRequest* req,
                                      v1::ReshardStatusResponse* resp) {
  ScopedCaller caller(ctx, "Reshard/Complete");
  return Answer(core_->reshard().Complete(req->index()), resp);
}

grpc::Status ReshardService::Cutover(grpc::ServerContext* ctx, const v1::ReshardCutoverRequest* req,
                                     v1::ReshardStatusResponse* resp) {
  ScopedCaller caller(ctx, "Reshard/Cutover");
  return Answer(core_->reshard().Cutover(req->index(), req->force()), resp);
}

}  // namespace miroir::coordinator
