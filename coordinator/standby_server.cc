#include "coordinator/standby_server.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/generic/async_generic_service.h"

namespace miroir::coordinator {

class StandbyServer::Service : public grpc::CallbackGenericService {
 public:
  explicit Service(std::function<std::string()> leader) : leader_(std::move(leader)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Refusal : public grpc::ServerGenericBidiReactor {
     public:
      explicit Refusal(const std::string& msg) {
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, msg));
      }
      void OnDone() override { delete this; }
    };
    return new Refusal(StandbyRefusal(leader_()));
  }

 private:
  std::function<std::string()> leader_;
};

std::string StandbyRefusal(const std::string& leader) {
  return absl::StrCat("standby coordinator; the leader is ",
                      leader.empty() ? std::string("not known yet") : leader);
}

absl::StatusOr<std::unique_ptr<StandbyServer>> StandbyServer::Start(
    const std::string& listen, std::function<std::string()> leader,
    const std::vector<grpc::Service*>& services, const miroir::ServerSecurity& security) {
  std::unique_ptr<StandbyServer> s(new StandbyServer());
  s->service_ = std::make_unique<Service>(std::move(leader));
  auto running = miroir::StartGrpcServer(listen, services, security, s->service_.get());
  if (!running.ok()) return running.status();
  s->server_ = std::move(running->server);
  s->port_ = running->port;
  return s;
}

StandbyServer::~StandbyServer() { Shutdown(); }

void StandbyServer::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }
}

}  // namespace miroir::coordinator
