// Shared gRPC server plumbing for miroir-coordinator and miroir-worker: the
// standard grpc.health.v1 health service (SERVING), server reflection, binding
// with the OS-assigned port reported back, and clean shutdown on SIGTERM/SIGINT.
#ifndef MIROIR_COMMON_GRPC_SERVER_H_
#define MIROIR_COMMON_GRPC_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace miroir {

// Builds and starts a server on `listen` ("HOST:PORT"; port 0 = OS-assigned)
// with health and reflection. `services` are not owned and must outlive it.
struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port
};
absl::StatusOr<RunningServer> StartGrpcServer(const std::string& listen,
                                              const std::vector<grpc::Service*>& services);

// Blocks until SIGTERM or SIGINT arrives. Installs the handlers on first call.
// Thread-safe; call from main after the server started.
void WaitForShutdownSignal();

// Wakes WaitForShutdownSignal as if a signal arrived (tests, fatal errors).
void RequestShutdown();

// Writes "PORT\n" to `path` atomically when path is non-empty (the harness reads
// the OS-assigned port from it).
absl::Status WritePortFile(const std::string& path, int port);

// Maps an absl::Status to a grpc::Status with the same code and message.
grpc::Status ToGrpc(const absl::Status& s);
// And back (client side).
absl::Status FromGrpc(const grpc::Status& s);

// A client channel to HOST:PORT with miroir's keepalive settings.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

}  // namespace miroir

#endif  // MIROIR_COMMON_GRPC_SERVER_H_
