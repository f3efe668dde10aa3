// StandbyServer: what a standby coordinator (etcd backend, DESIGN §9) answers
// while it campaigns: every gRPC method UNAVAILABLE, naming the leader it last
// saw, so miroir-ctl, workers and clients move on to the leader. The leader's
// real services replace it on the same port once this process wins.
//
// Thread-safe.
#ifndef MIROIR_COORDINATOR_STANDBY_SERVER_H_
#define MIROIR_COORDINATOR_STANDBY_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace miroir::coordinator {

class StandbyServer {
 public:
  // Binds `listen` (port 0: any) and answers every call UNAVAILABLE with
  // "standby coordinator; the leader is " + leader(). `leader` must not block.
  static absl::StatusOr<std::unique_ptr<StandbyServer>> Start(const std::string& listen,
                                                              std::function<std::string()> leader);
  ~StandbyServer();
  int port() const { return port_; }
  // Stops answering and frees the port.
  void Shutdown();

 private:
  class Service;
  StandbyServer() = default;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_STANDBY_SERVER_H_
