// StandbyServer: what a standby coordinator (etcd backend, DESIGN §9) serves
// while it campaigns. The read services it is given (status, plans, indexes,
// reshard and anti-entropy views, GetView) answer from the standby's copy of
// the model, kept fresh from etcd (StandbyRefresher); their mutations answer
// UNAVAILABLE naming the leader (Coordinator in standby mode), and so does
// every method no given service has (a worker's session), so miroir-ctl,
// workers and clients move on to the leader. The leader's real services
// replace it on the same port once this process wins. Same TLS and tokens as
// the leader's server.
//
// Thread-safe.
#ifndef MIROIR_COORDINATOR_STANDBY_SERVER_H_
#define MIROIR_COORDINATOR_STANDBY_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/grpc_server.h"
#include "grpcpp/grpcpp.h"

namespace miroir::coordinator {

// "standby coordinator; the leader is ADDRESS" (or "not known yet").
std::string StandbyRefusal(const std::string& leader);

class StandbyServer {
 public:
  // Binds `listen` (port 0: any) with `services` and the refusal for the rest.
  // `leader` must not block. The services must outlive the server.
  static absl::StatusOr<std::unique_ptr<StandbyServer>> Start(
      const std::string& listen, std::function<std::string()> leader,
      const std::vector<grpc::Service*>& services, const miroir::ServerSecurity& security);
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
