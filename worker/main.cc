// miroir-worker: the stateless data plane (DESIGN §1, §4). Serves DataPlane,
// keeps a WorkerControl session with the coordinator, runs leased tasks.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <random>

#include "absl/strings/str_format.h"
#include "common/build_info.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/version.h"
#include "spdlog/spdlog.h"
#include "worker/coordinator_session.h"
#include "worker/dataplane_service.h"
#include "worker/inflight_tracker.h"
#include "worker/node_stores.h"
#include "worker/read_exclusions.h"
#include "worker/router.h"
#include "worker/tasks/task_runner.h"
#include "worker/thread_pool.h"
#include "worker/worker_config.h"
#include "worker/worker_metrics.h"
#include "worker/write_path.h"

namespace {

std::string RandomWorkerId() {
  std::random_device rd;
  return absl::StrFormat("w-%08x", rd());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"miroir-worker: data plane of miroir (client writes, routing, tasks)"};
  std::string config_path, listen, coordinator, metrics_listen, log_format, port_file, worker_id;
  int64_t clock_offset_ms = 0;
  int64_t ack_delay_ms = 0;
  bool insecure = false;
  miroir::TlsFiles tls_flags;
  std::string tokens_file, coordinator_token_file;
  app.add_option("--config", config_path, "YAML config file (docs/worker.md)");
  app.add_option("--listen", listen, "DataPlane HOST:PORT (default 127.0.0.1:7500; port 0 = any)");
  app.add_option("--coordinator", coordinator, "coordinator HOST:PORT (default 127.0.0.1:7400)");
  app.add_option("--metrics-listen", metrics_listen, "Prometheus HOST:PORT (default off)");
  app.add_option("--log-format", log_format, "text|json (default text)");
  app.add_option("--port-file", port_file, "write the bound DataPlane port to this file");
  app.add_option("--worker-id", worker_id, "worker id (default random per start)");
  app.add_option("--tls-cert", tls_flags.cert,
                 "PEM certificate: serve TLS, and present it to the coordinator (tls.cert)");
  app.add_option("--tls-key", tls_flags.key, "PEM private key of --tls-cert (tls.key)");
  app.add_option("--tls-ca", tls_flags.ca,
                 "PEM CA: require client certificates, and verify the coordinator (tls.ca)");
  app.add_flag("--insecure", insecure, "allow plaintext on a non-loopback --listen address");
  app.add_option("--tokens-file", tokens_file,
                 "roles file for DataPlane callers (auth.tokens_file; docs/security.md)");
  app.add_option("--coordinator-token-file", coordinator_token_file,
                 "file holding the bearer token sent to the coordinator (coordinator_token_file)");
  app.add_option("--clock-offset-ms", clock_offset_ms,
                 "TEST ONLY: skew the hybrid clock's physical time by N ms");
  app.add_option("--test-ack-delay-ms", ack_delay_ms,
                 "TEST ONLY: hold each routing ack N ms after its epoch is applied")
      ->check(CLI::Range(int64_t{0}, int64_t{60000}));
  app.set_version_flag("--version", miroir::VersionLine("miroir-worker"),
                       "Print the version and git commit, then exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  miroir::WorkerConfig cfg;
  if (!config_path.empty()) {
    auto loaded = miroir::LoadWorkerConfig(config_path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(loaded.status().message()).c_str());
      return 2;
    }
    cfg = *loaded;
  }
  if (!listen.empty()) cfg.listen = listen;
  if (!coordinator.empty()) cfg.coordinator = coordinator;
  if (!metrics_listen.empty()) cfg.metrics_listen = metrics_listen;
  if (!log_format.empty()) cfg.log_format = log_format;
  miroir::MergeTlsFiles(tls_flags, &cfg.tls);
  if (!tokens_file.empty()) cfg.auth_tokens_file = tokens_file;
  if (!coordinator_token_file.empty()) cfg.coordinator_token_file = coordinator_token_file;
  auto security =
      miroir::PrepareServerSecurity(cfg.listen, cfg.tls, insecure, cfg.auth_tokens_file);
  if (!security.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(security.status().message()).c_str());
    return 2;
  }
  miroir::ClientSecurity to_coordinator{cfg.tls, "", {}};
  if (!cfg.coordinator_token_file.empty()) {
    auto token = miroir::ReadTokenFile("coordinator_token_file", cfg.coordinator_token_file);
    if (!token.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(token.status().message()).c_str());
      return 2;
    }
    to_coordinator.token = *token;
  }
  if (auto s = miroir::SetClientSecurity(to_coordinator); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (auto s = miroir::SetupLogging("miroir-worker", cfg.log_format); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (worker_id.empty()) worker_id = RandomWorkerId();
  if (clock_offset_ms != 0) {
    spdlog::warn("TEST ONLY: hybrid clock skewed by {} ms", clock_offset_ms);
  }

  miroir::SystemClock clock(clock_offset_ms);
  miroir::HybridClock hlc(&clock, miroir::HybridClock::RandomWriterId());
  miroir::Router router;
  miroir::InflightTracker inflight;
  miroir::NodeStores stores(cfg.store);
  miroir::ThreadPool fanout(cfg.fanout_threads);

  miroir::SessionOptions sopts;
  sopts.coordinator = cfg.coordinator;
  sopts.worker_id = worker_id;
  sopts.max_tasks = cfg.max_tasks;
  sopts.miss_queue_entries = static_cast<size_t>(cfg.miss_queue_entries);
  if (ack_delay_ms > 0) {
    spdlog::warn("TEST ONLY: routing acks held {} ms after each epoch is applied", ack_delay_ms);
    sopts.test_ack_delay = absl::Milliseconds(ack_delay_ms);
  }
  // The DataPlane address is known once bound (port 0 = OS-assigned); the session
  // registers it when started, after the bind.
  miroir::ReadExclusions read_exclusions;  // outlives the session that feeds it
  auto session = std::make_unique<miroir::CoordinatorSession>(sopts, &router, &inflight, &stores);
  session->set_read_exclusions(&read_exclusions);
  miroir::WritePath writes(&router, &stores, &hlc, miroir::SystemClock::Default(), &fanout,
                           &inflight, session.get(), cfg.write);
  miroir::DataPlaneService dataplane(&writes, &router, &stores, session.get(), &read_exclusions,
                                     cfg.max_batches_in_flight);
  auto server = miroir::StartGrpcServer(cfg.listen, {&dataplane}, *security);
  if (!server.ok()) {
    spdlog::error("{}", std::string(server.status().message()));
    return 1;
  }
  const std::string host = cfg.listen.substr(0, cfg.listen.rfind(':'));
  session->set_address(absl::StrFormat("%s:%d", host, server->port));
  miroir::TaskRunner tasks(&router, &stores, session.get());
  session->set_task_sink(&tasks);
  miroir::WorkerMetrics metrics(&writes, &inflight, &tasks);
  if (!cfg.metrics_listen.empty()) {
    auto mport = miroir::StartMetricsServer(cfg.metrics_listen);
    if (!mport.ok()) {
      spdlog::error("{}", std::string(mport.status().message()));
      return 1;
    }
    spdlog::info("metrics on {} (port {})", cfg.metrics_listen, *mport);
    miroir::RegisterBuildInfo(miroir::MetricsRegistry::Default());
  }
  session->Start();
  if (auto s = miroir::WritePortFile(port_file, server->port); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 1;
  }
  spdlog::info("miroir-worker {} (writer {:016x}) serving DataPlane on {}:{}, coordinator {}",
               worker_id, hlc.writer(), host, server->port, cfg.coordinator);
  metrics.Start();
  miroir::WaitForShutdownSignal();
  spdlog::info("shutting down");
  metrics.Stop();
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  tasks.Stop();
  session->Stop();
  return 0;
}
