#include "common/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <mutex>
#include <semaphore>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/client_channel.h"

namespace miroir {
namespace {

// Signal handlers may only do async-signal-safe work: post a byte on a pipe.
int g_signal_pipe[2] = {-1, -1};
std::once_flag g_signal_once;

void OnSignal(int) {
  char c = 1;
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &c, 1);
}

void InstallHandlers() {
  std::call_once(g_signal_once, [] {
    if (pipe(g_signal_pipe) != 0) std::abort();
    struct sigaction sa = {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
  });
}

}  // namespace

absl::StatusOr<RunningServer> StartGrpcServer(const std::string& listen,
                                              const std::vector<grpc::Service*>& services) {
  InstallHandlers();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  RunningServer out;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &out.port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  // Accept the keepalive pings MakeChannel's clients send every 10 s, also on an
  // idle connection: by default the server tolerates one every 5 minutes without
  // data and answers the third with GOAWAY "too_many_pings", failing the next call.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  for (auto* s : services) builder.RegisterService(s);
  out.server = builder.BuildAndStart();
  if (!out.server || out.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  }
  out.server->GetHealthCheckService()->SetServingStatus(true);
  return out;
}

void WaitForShutdownSignal() {
  InstallHandlers();
  char c;
  while (read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
  }
}

void RequestShutdown() {
  InstallHandlers();
  OnSignal(0);
}

absl::Status WritePortFile(const std::string& path, int port) {
  if (path.empty()) return absl::OkStatus();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << port << "\n";
    if (!f) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  return NewClientChannel(target);
}

}  // namespace miroir
