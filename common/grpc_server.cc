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
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/auth_processor.h"
#include "common/client_channel.h"
#include "spdlog/spdlog.h"

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
                                              const std::vector<grpc::Service*>& services,
                                              const ServerSecurity& security,
                                              grpc::CallbackGenericService* fallback) {
  InstallHandlers();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  RunningServer out;
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!security.tls.cert.empty()) {
    creds = MakeServerCredentials(security.tls);
  } else if (security.auth != nullptr) {
    if (!IsLoopbackHost(HostOf(listen))) {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen ", listen,
                       ": auth.tokens_file over plaintext needs a loopback address or --tls-cert"));
    }
    creds = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  if (security.auth != nullptr) creds->SetAuthMetadataProcessor(security.auth);
  builder.AddListeningPort(listen, creds, &out.port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  // Accept the keepalive pings MakeChannel's clients send every 10 s, also on an
  // idle connection: by default the server tolerates one every 5 minutes without
  // data and answers the third with GOAWAY "too_many_pings", failing the next call.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  for (auto* s : services) builder.RegisterService(s);
  if (fallback != nullptr) builder.RegisterCallbackGenericService(fallback);
  out.server = builder.BuildAndStart();
  if (!out.server || out.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  }
  out.server->GetHealthCheckService()->SetServingStatus(true);
  return out;
}

namespace {
int g_reload_pipe[2] = {-1, -1};
absl::Mutex g_reload_mu;
std::vector<std::function<void()>>* g_reload_fns ABSL_GUARDED_BY(g_reload_mu) = nullptr;

void OnHangup(int) {
  char c = 1;
  [[maybe_unused]] ssize_t n = write(g_reload_pipe[1], &c, 1);
}
}  // namespace

void OnReloadSignal(std::function<void()> fn) {
  absl::MutexLock l(&g_reload_mu);
  if (g_reload_fns != nullptr) {
    g_reload_fns->push_back(std::move(fn));
    return;
  }
  g_reload_fns = new std::vector<std::function<void()>>{std::move(fn)};
  if (pipe(g_reload_pipe) != 0) std::abort();
  std::thread([] {
    char c;
    while (true) {
      const ssize_t n = read(g_reload_pipe[0], &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      std::vector<std::function<void()>> fns;
      {
        absl::MutexLock l(&g_reload_mu);
        fns = *g_reload_fns;
      }
      for (const auto& f : fns) f();
    }
  }).detach();
  struct sigaction sa = {};
  sa.sa_handler = OnHangup;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGHUP, &sa, nullptr);
}

absl::StatusOr<ServerSecurity> PrepareServerSecurity(const std::string& listen, const TlsFiles& tls,
                                                     bool insecure,
                                                     const std::string& tokens_file) {
  if (auto s = ValidateTlsFiles(tls, /*server=*/true); !s.ok()) return s;
  if (auto s = CheckListenSecurity("--listen", listen, tls, insecure); !s.ok()) return s;
  ServerSecurity out;
  out.tls = tls;
  if (tokens_file.empty()) return out;
  auto processor = AuthProcessor::Load(tokens_file);
  if (!processor.ok()) return processor.status();
  out.auth = *processor;
  OnReloadSignal([p = *processor] {
    if (auto s = p->Reload(); !s.ok()) {
      spdlog::error("SIGHUP: tokens file not reloaded, keeping the previous one: {}",
                    std::string(s.message()));
    } else {
      spdlog::info("SIGHUP: tokens file reloaded");
    }
  });
  return out;
}

void WaitForShutdownSignal() {
  InstallHandlers();
  char c;
  while (read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
  }
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

namespace {
absl::Mutex g_client_mu;
ClientSecurity* g_client_security ABSL_GUARDED_BY(g_client_mu) = nullptr;
std::shared_ptr<grpc::ChannelCredentials>* g_client_creds ABSL_GUARDED_BY(g_client_mu) = nullptr;
}  // namespace

absl::Status SetClientSecurity(const ClientSecurity& security) {
  auto creds = MakeChannelCredentials(security.tls);
  if (!creds.ok()) return creds.status();
  absl::MutexLock l(&g_client_mu);
  delete g_client_security;
  delete g_client_creds;
  g_client_security = new ClientSecurity(security);
  g_client_creds = new std::shared_ptr<grpc::ChannelCredentials>(*creds);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& flag, const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read"));
  std::string line;
  std::getline(f, line);
  const auto first = line.find_first_not_of(" \t\r");
  const auto last = line.find_last_not_of(" \t\r");
  if (first == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": empty token file"));
  }
  return line.substr(first, last - first + 1);
}

std::vector<std::string> SplitAddressList(const std::string& list) {
  std::vector<std::string> out;
  for (absl::string_view a : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(a));
  }
  return out;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  std::string token;
  {
    absl::MutexLock l(&g_client_mu);
    if (g_client_security != nullptr) {
      creds = *g_client_creds;
      auto it = g_client_security->target_tokens.find(target);
      token = it != g_client_security->target_tokens.end() ? it->second : g_client_security->token;
    }
  }
  return NewClientChannel(target, creds, token);
}

}  // namespace miroir
