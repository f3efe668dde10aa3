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
    std::string leader = leader_();
    return new Refusal(absl::StrCat("standby coordinator; the leader is ",
                                    leader.empty() ? std::string("not known yet") : leader));
  }

 private:
  std::function<std::string()> leader_;
};

absl::StatusOr<std::unique_ptr<StandbyServer>> StandbyServer::Start(
    const std::string& listen, std::function<std::string()> leader) {
  std::unique_ptr<StandbyServer> s(new StandbyServer());
  s->service_ = std::make_unique<Service>(std::move(leader));
  grpc::ServerBuilder b;
  b.AddListeningPort(listen, grpc::InsecureServerCredentials(), &s->port_);
  b.RegisterCallbackGenericService(s->service_.get());
  s->server_ = b.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  }
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
