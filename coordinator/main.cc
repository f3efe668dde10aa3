// miroir-coordinator: the control plane (DESIGN §1, §9). Flags override the
// config file; a config error prints one line and exits 2.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/time/clock.h"
#include "common/build_info.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "coordinator/address_probe.h"
#include "coordinator/anti_entropy_service.h"
#include "coordinator/config.h"
#include "coordinator/coordinator.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/data_dir_lock.h"
#include "coordinator/etcd_client.h"
#include "coordinator/etcd_leadership.h"
#include "coordinator/etcd_state_store.h"
#include "coordinator/etcd_status.h"
#include "coordinator/reshard_service.h"
#include "coordinator/sqlite_state_store.h"
#include "coordinator/standby_refresher.h"
#include "coordinator/standby_server.h"
#include "coordinator/state_restore.h"
#include "coordinator/worker_control_service.h"
#include "spdlog/spdlog.h"

namespace {

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace miroir::coordinator;
  CLI::App app{"miroir-coordinator: control plane of miroir"};
  std::string config_file, listen, data_dir, metrics_listen, log_format, port_file, restore;
  bool unsafe_skip = false;
  bool insecure = false;
  miroir::TlsFiles tls_flags;
  std::string tokens_file;
  app.add_option("--config", config_file, "YAML config file");
  app.add_option("--listen", listen, "gRPC HOST:PORT (default 127.0.0.1:7400; port 0 = any)");
  app.add_option("--data-dir", data_dir, "Directory of the SQLite state file (./miroir-data)");
  app.add_option("--metrics-listen", metrics_listen, "Prometheus HOST:PORT (default off)");
  app.add_option("--log-format", log_format, "text|json");
  app.add_option("--port-file", port_file, "Write the bound gRPC port to this file");
  app.add_option("--tls-cert", tls_flags.cert, "PEM server certificate: serve TLS (tls.cert)");
  app.add_option("--tls-key", tls_flags.key, "PEM private key of --tls-cert (tls.key)");
  app.add_option("--tls-ca", tls_flags.ca,
                 "PEM CA: require and verify client certificates, mTLS (tls.ca)");
  app.add_flag("--insecure", insecure, "Allow plaintext on a non-loopback --listen address");
  app.add_option("--tokens-file", tokens_file,
                 "Roles file (auth.tokens_file; docs/security.md); default: no authorization");
  app.add_option("--restore", restore,
                 "Restore the state from a backup file (miroir-ctl backup) into an empty "
                 "--data-dir, then start (docs/runbook.md)");
  app.set_version_flag("--version", miroir::VersionLine("miroir-coordinator"),
                       "Print the version and git commit, then exit");
  app.add_flag("--test-allow-unsafe-skip-delta", unsafe_skip,
               "TEST ONLY: allow skipping the delta pass with anti-entropy off");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    return Fail(2, e.what());
  }

  // The file with the flags applied: at start, and again at each reload.
  auto load_config = [=]() -> absl::StatusOr<CoordinatorConfig> {
    CoordinatorConfig config;
    if (!config_file.empty()) {
      auto loaded = LoadCoordinatorConfig(config_file);
      if (!loaded.ok()) return loaded.status();
      config = *loaded;
    }
    if (!listen.empty()) config.listen = listen;
    if (!data_dir.empty()) config.data_dir = data_dir;
    if (!metrics_listen.empty()) config.metrics_listen = metrics_listen;
    if (!log_format.empty()) config.log_format = log_format;
    config.test_allow_unsafe_skip_delta = unsafe_skip;
    miroir::MergeTlsFiles(tls_flags, &config.tls);
    if (!tokens_file.empty()) config.auth_tokens_file = tokens_file;
    return config;
  };
  auto initial = load_config();
  if (!initial.ok()) return Fail(2, std::string(initial.status().message()));
  CoordinatorConfig config = *initial;
  auto security =
      miroir::PrepareServerSecurity(config.listen, config.tls, insecure, config.auth_tokens_file);
  if (!security.ok()) return Fail(2, std::string(security.status().message()));
  if (auto st = ValidateCoordinatorConfig(config); !st.ok()) {
    return Fail(2, std::string(st.message()));
  }
  if (auto st = miroir::SetupLogging("miroir-coordinator", config.log_format, config.log_level);
      !st.ok()) {
    return Fail(2, std::string(st.message()));
  }
  if (unsafe_skip) {
    spdlog::warn("--test-allow-unsafe-skip-delta is set: the delta-skip safety gate is OFF");
  }

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return Fail(1, "--data-dir " + config.data_dir + ": " + ec.message());
  // Held until exit: a second coordinator on this directory exits 2 naming us.
  auto dir_lock = DataDirLock::Acquire(config.data_dir);
  if (!dir_lock.ok()) {
    const bool in_use = dir_lock.status().code() == absl::StatusCode::kFailedPrecondition;
    return Fail(in_use ? 2 : 1, std::string(dir_lock.status().message()));
  }
  // Metrics serve from the start: a standby reports miroir_coordinator_is_leader 0.
  auto metrics_port = miroir::StartMetricsServer(config.metrics_listen);
  if (!metrics_port.ok()) return Fail(2, std::string(metrics_port.status().message()));
  miroir::RegisterBuildInfo(miroir::MetricsRegistry::Default());
  miroir::Gauge& is_leader = miroir::MetricsRegistry::Default().GetGauge(
      "miroir_coordinator_is_leader", "1 while this coordinator leads, 0 while it stands by.");
  miroir::Gauge& term_gauge = miroir::MetricsRegistry::Default().GetGauge(
      "miroir_coordinator_term",
      "The term this coordinator leads in (etcd: its leader key's create revision; 0 SQLite).");
  is_leader.Set(0);
  std::unique_ptr<StateStore> store;
  // etcd backend (docs/ha.md): campaign first; while a standby, reads are served
  // from a read-only copy of the model kept fresh from etcd, and mutations (and
  // worker sessions) answered UNAVAILABLE naming the leader; the winner loads
  // the model afresh.
  std::unique_ptr<EtcdClient> etcd;
  std::unique_ptr<EtcdLeadership> leadership;
  int64_t etcd_term = 0;
  if (config.state.backend == "etcd") {
    if (!restore.empty()) {
      return Fail(2, "--restore: only with state.backend sqlite (etcd: docs/runbook.md)");
    }
    const EtcdConfig& ec = config.state.etcd;
    auto client = EtcdClient::Connect(EtcdAddresses(ec), ec.dial_timeout, ec.request_timeout,
                                      ec.tls, ec.tls_server_name);
    if (!client.ok()) {
      // A TLS file gone since validation is a config error; no answer is not.
      const bool config = client.status().code() == absl::StatusCode::kInvalidArgument;
      return Fail(config ? 2 : 1, std::string(client.status().message()));
    }
    etcd = std::move(*client);
    auto etcd_store = std::make_unique<EtcdStateStore>(etcd.get(), ec.prefix);
    EtcdLeadership* lead = nullptr;
    std::function<std::string()> leader_fn = [&lead] {
      return lead == nullptr ? std::string() : lead->last_seen_leader();
    };
    auto standby_core =
        Coordinator::CreateStandby(config, std::make_unique<EtcdStateStore>(etcd.get(), ec.prefix),
                                   miroir::SystemClock::Default(), leader_fn);
    if (!standby_core.ok()) {
      const bool config = standby_core.status().code() == absl::StatusCode::kFailedPrecondition;
      return Fail(config ? 2 : 1, std::string(standby_core.status().message()));
    }
    CoordinatorService standby_api(standby_core->get(), "");
    standby_api.set_control_plane_status(
        [client = etcd.get(), layout = EtcdLayout(ec.prefix)](miroir::v1::GetStatusResponse* resp) {
          AddEtcdStatus(client, layout, resp);
        });
    WorkerControlService standby_views(standby_core->get());
    AntiEntropyService standby_anti_entropy(standby_core->get());
    ReshardService standby_reshard(standby_core->get());
    auto standby = StandbyServer::Start(
        config.listen, leader_fn,
        {&standby_api, &standby_views, &standby_anti_entropy, &standby_reshard}, *security);
    if (!standby.ok()) return Fail(1, std::string(standby.status().message()));
    StandbyRefresher refresher(etcd.get(), EtcdLayout(ec.prefix), standby_core->get());
    const std::string host = config.listen.substr(0, config.listen.rfind(':'));
    config.listen = host + ":" + std::to_string((*standby)->port());
    leadership = std::make_unique<EtcdLeadership>(etcd.get(), etcd_store->layout(), config.listen,
                                                  ec.lease_ttl);
    lead = leadership.get();
    {
      miroir::v1::CoordinatorMember me;
      me.set_address(config.listen);
      me.set_version(miroir::BuildVersion());
      me.set_started_ms(absl::ToUnixMillis(absl::Now()));
      leadership->set_member_value(me.SerializeAsString());
    }
    if (auto st = miroir::WritePortFile(port_file, (*standby)->port()); !st.ok()) {
      return Fail(1, std::string(st.message()));
    }
    spdlog::info("miroir-coordinator {} campaigning on etcd {} (prefix {})", config.listen,
                 etcd->endpoints_text(), ec.prefix);
    auto term = leadership->Campaign();
    if (!term.ok()) return Fail(1, std::string(term.status().message()));
    // A leader whose lease is gone must not act another moment: its commits are
    // refused by etcd already; exiting ends its grants, tasks and views too.
    leadership->set_on_lost([] {
      spdlog::critical("etcd leadership lost: exiting (a supervisor restarts this as a standby)");
      spdlog::default_logger()->flush();
      std::_Exit(3);
    });
    // A commit of ours whose answer was lost was applied: the model in memory is
    // behind etcd's. Resign (a standby takes over at once and loads it) and exit.
    etcd_store->set_on_diverged([lead](const std::string& why) {
      spdlog::critical(
          "{}: resigning and exiting (the next leader loads the model from etcd; "
          "a supervisor restarts this as a standby)",
          why);
      lead->Shutdown();
      spdlog::default_logger()->flush();
      std::_Exit(3);
    });
    etcd_store->SetTerm(*term);
    etcd_term = *term;
    refresher.Stop();
    (*standby)->Shutdown();
    store = std::move(etcd_store);
  } else {
    const std::string state_file = config.data_dir + "/coordinator.db";
    if (!restore.empty()) {
      auto restored = RestoreStateFile(restore, state_file);
      if (!restored.ok()) return Fail(2, std::string(restored.status().message()));
      spdlog::warn(
          "state restored from {}: epoch {} in the backup, starting at epoch {} (raised past "
          "anything published after the backup); {} plans, running ones resume",
          restore, restored->backup_epoch, restored->epoch, restored->plans);
    }
    auto sqlite = SqliteStateStore::Open(state_file);
    if (!sqlite.ok()) return Fail(1, std::string(sqlite.status().message()));
    store = std::move(*sqlite);
  }
  auto core = Coordinator::Create(config, std::move(store), miroir::SystemClock::Default());
  if (!core.ok()) {  // another cluster's model: a configuration error (exit 2)
    const bool config = core.status().code() == absl::StatusCode::kFailedPrecondition;
    return Fail(config ? 2 : 1, std::string(core.status().message()));
  }
  if (!config_file.empty()) (*core)->set_config_loader(load_config, config_file);
  (*core)->set_address_probe(
      [](const std::string& address) { return ProbeTcpAddress(address, absl::Seconds(2)); });

  CoordinatorService operator_api(core->get(), config.listen);
  WorkerControlService worker_api(core->get());
  AntiEntropyService anti_entropy_api(core->get());
  ReshardService reshard_api(core->get());
  auto server = miroir::StartGrpcServer(
      config.listen, {&operator_api, &worker_api, &anti_entropy_api, &reshard_api}, *security);
  if (!server.ok()) return Fail(1, std::string(server.status().message()));
  const std::string host = config.listen.substr(0, config.listen.rfind(':'));
  operator_api.set_leader(host + ":" + std::to_string(server->port));
  if (etcd != nullptr) {
    operator_api.set_control_plane_status(
        [client = etcd.get(), layout = EtcdLayout(config.state.etcd.prefix)](
            miroir::v1::GetStatusResponse* resp) { AddEtcdStatus(client, layout, resp); });
  }
  if (auto st = miroir::WritePortFile(port_file, server->port); !st.ok()) {
    return Fail(1, std::string(st.message()));
  }
  is_leader.Set(1);
  term_gauge.Set(static_cast<double>(etcd_term));
  (*core)->Start();
  spdlog::info("miroir-coordinator listening on {}:{} (data dir {}, metrics port {})", host,
               server->port, config.data_dir, *metrics_port);

  std::atomic<bool> stop{false};
  std::thread metrics_thread([&] {
    while (!stop.load()) {
      if (*metrics_port != 0) {
        RefreshCoordinatorMetrics(**core, miroir::MetricsRegistry::Default());
      }
      for (int i = 0; i < 10 && !stop.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });
  // SIGHUP reloads the live keys of --config (the same as miroir-ctl config reload),
  // after the tokens file when there is one (one handler: common/grpc_server.h).
  miroir::OnReloadSignal([&core, &config_file] {
    spdlog::info("SIGHUP: reloading {}", config_file.empty() ? "(no --config)" : config_file);
    auto r = (*core)->ReloadConfig();
    if (!r.ok()) {
      spdlog::error("SIGHUP: {}", std::string(r.status().message()));
    } else {
      spdlog::info("SIGHUP: {} keys applied, {} need a restart", r->applied_size(),
                   r->restart_needed_size());
    }
  });
  miroir::WaitForShutdownSignal();
  spdlog::info("shutting down");
  stop = true;
  metrics_thread.join();
  signal(SIGHUP, SIG_IGN);  // no reload once shutting down
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  (*core)->Stop();
  if (leadership) leadership->Shutdown();  // resign: a standby takes over at once
  return 0;
}
