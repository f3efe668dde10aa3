#include "coordinator/worker_control_service.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "coordinator/standby_server.h"

namespace miroir::coordinator {

grpc::Status WorkerControlService::Session(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) {
  // A standby grants no lease: the worker moves on to the leader it names.
  if (core_->standby()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, StandbyRefusal(core_->StandbyLeader()));
  }
  v1::WorkerMessage msg;
  if (!stream->Read(&msg)) return grpc::Status::OK;
  if (msg.msg_case() != v1::WorkerMessage::kRegister) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "register: the first message of a session must be register");
  }
  const std::string worker = msg.register_().worker_id();
  auto outbox = core_->RegisterWorker(msg.register_());
  if (!outbox.ok()) return ToGrpc(outbox.status());
  std::shared_ptr<Outbox> box = *outbox;
  std::thread writer([box, stream, ctx] {
    while (auto m = box->Pop()) {
      if (!stream->Write(*m)) break;
    }
    // Unblock the reader if the writer failed first.
    ctx->TryCancel();
  });
  grpc::Status result = grpc::Status::OK;
  while (stream->Read(&msg)) {
    switch (msg.msg_case()) {
      case v1::WorkerMessage::kHeartbeat:
        if (!core_->workers().IsLive(worker)) {
          result = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "worker lease expired; open a new session and register again");
          break;
        }
        core_->Heartbeat(worker, msg.heartbeat());
        continue;
      case v1::WorkerMessage::kRoutingAck:
        core_->RoutingAck(worker, msg.routing_ack().epoch());
        continue;
      case v1::WorkerMessage::kProgress: {
        v1::CoordinatorMessage ack;
        ack.mutable_checkpoint_ack()->set_task_id(msg.progress().task_id());
        ack.mutable_checkpoint_ack()->set_lease_generation(msg.progress().lease_generation());
        ack.mutable_checkpoint_ack()->set_accepted(core_->TaskProgress(worker, msg.progress()));
        box->Push(ack);
        continue;
      }
      case v1::WorkerMessage::kComplete:
        core_->TaskComplete(worker, msg.complete());
        continue;
      case v1::WorkerMessage::kFailed:
        core_->TaskFailed(worker, msg.failed());
        continue;
      case v1::WorkerMessage::kMisses: {
        if (absl::Status s = core_->ReportMisses(msg.misses()).status(); !s.ok()) {
          // Not recorded: end the session, so the worker reports its unconfirmed
          // misses again on the next one (and keeps excluding them meanwhile).
          result = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                absl::StrCat("misses: not recorded (", s.message(),
                                             "); register again and report them again"));
          break;
        }
        // The list now reflects this report: the worker may stop excluding its
        // misses on its own.
        if (msg.misses().seq() > 0) box->Push(core_->ReadExclusionsMessage(msg.misses().seq()));
        continue;
      }
      case v1::WorkerMessage::kNodeReport:
        core_->NodeReport(msg.node_report());
        continue;
      default:
        continue;
    }
    break;
  }
  core_->WorkerDisconnected(worker, box);
  writer.join();
  return result;
}

grpc::Status WorkerControlService::GetView(grpc::ServerContext*, const v1::GetViewRequest* req,
                                           v1::ClusterView* resp) {
  auto view = core_->View();
  if (view->epoch() < req->min_epoch()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "min_epoch: the coordinator has not reached that epoch");
  }
  *resp = *view;
  return grpc::Status::OK;
}

grpc::Status WorkerControlService::ReportMisses(grpc::ServerContext*, const v1::MissReport* req,
                                                v1::MissReportAck* resp) {
  auto n = core_->ReportMisses(*req);
  if (!n.ok()) return ToGrpc(n.status());
  resp->set_scheduled(*n);
  // The list now reflects this report: the worker may stop excluding its misses
  // on its own.
  *resp->mutable_read_exclusions() = core_->ReadExclusionsMessage(req->seq()).read_exclusions();
  return grpc::Status::OK;
}

}  // namespace miroir::coordinator
