// Shared gRPC server plumbing for miroir-coordinator and miroir-worker: the
// standard grpc.health.v1 health service (SERVING), server reflection, binding
// with the OS-assigned port reported back, and clean shutdown on SIGTERM/SIGINT.
#ifndef MIROIR_COMMON_GRPC_SERVER_H_
#define MIROIR_COMMON_GRPC_SERVER_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tls.h"

namespace miroir {

// Builds and starts a server on `listen` ("HOST:PORT"; port 0 = OS-assigned)
// with health and reflection. `services` are not owned and must outlive it.
// Transport security and authorization of a server (DESIGN §13). `auth` null:
// every call is accepted (no auth.tokens_file). With `auth` and no certificate
// the listen address must be loopback (gRPC's local credentials carry it).
struct ServerSecurity {
  TlsFiles tls;
  std::shared_ptr<grpc::AuthMetadataProcessor> auth;
};

struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port
};
// `fallback` (optional) answers every method no registered service has.
absl::StatusOr<RunningServer> StartGrpcServer(const std::string& listen,
                                              const std::vector<grpc::Service*>& services,
                                              const ServerSecurity& security = {},
                                              grpc::CallbackGenericService* fallback = nullptr);

// Everything a server program checks before it listens (DESIGN §13): TLS files
// readable, a plaintext listen address loopback unless `insecure`, the tokens
// file (empty: none) loaded and re-read on SIGHUP. INVALID_ARGUMENT naming the
// flag, file or field; the program exits 2.
absl::StatusOr<ServerSecurity> PrepareServerSecurity(const std::string& listen, const TlsFiles& tls,
                                                     bool insecure, const std::string& tokens_file);

// Runs `fn` on a background thread each time SIGHUP arrives (the tokens file,
// the coordinator's live config keys): every registered function, in the order
// registered. Thread-safe; the first call installs the handler.
void OnReloadSignal(std::function<void()> fn);

// Blocks until SIGTERM or SIGINT arrives. Installs the handlers on first call.
// Thread-safe; call from main after the server started.
void WaitForShutdownSignal();

// Writes "PORT\n" to `path` atomically when path is non-empty (the harness reads
// the OS-assigned port from it).
absl::Status WritePortFile(const std::string& path, int port);

// Maps an absl::Status to a grpc::Status with the same code and message.
grpc::Status ToGrpc(const absl::Status& s);
// And back (client side).
absl::Status FromGrpc(const grpc::Status& s);

// What this process's clients present to servers: TLS files and a bearer token.
struct ClientSecurity {
  TlsFiles tls;
  std::string token;  // empty: none
  // A different token for some targets (HOST:PORT), e.g. a writer that is a
  // `client` of the workers and a `viewer` of the coordinator.
  std::map<std::string, std::string> target_tokens;
};
// Sets the process-wide client security MakeChannel uses (from main, before the
// first channel). Validates the TLS files (INVALID_ARGUMENT naming the flag).
absl::Status SetClientSecurity(const ClientSecurity& security);

// Reads a token file: its first line, trimmed. INVALID_ARGUMENT naming `flag`
// and the file (never the content) when unreadable or empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& flag, const std::string& path);

// The addresses of a comma-separated list ("a:1, b:2"), each trimmed of spaces;
// empty entries are dropped. A single address is a list of one.
std::vector<std::string> SplitAddressList(const std::string& list);

// A client channel to HOST:PORT with miroir's keepalive settings and the
// process's ClientSecurity.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

}  // namespace miroir

#endif  // MIROIR_COMMON_GRPC_SERVER_H_
