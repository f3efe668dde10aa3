// Shared helpers of the coordinator unit tests: temp dirs, a fleet, a running
// in-process coordinator (real SQLite file, real gRPC server on 127.0.0.1:0).
#ifndef MIROIR_TESTS_COORDINATOR_TEST_UTIL_H_
#define MIROIR_TESTS_COORDINATOR_TEST_UTIL_H_

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/grpc_server.h"
#include "coordinator/coordinator.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/sqlite_state_store.h"
#include "coordinator/worker_control_service.h"
#include "miroir/v1/coordinator.grpc.pb.h"

namespace miroir::testing {

namespace v1 = ::miroir::v1;

// A fresh directory removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "miroir-coord-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline constexpr char kFleet[] = R"(groups:
  - id: g0
    nodes:
      - {id: r0, address: "127.0.0.1:6380", store: redis}
      - {id: r1, address: "127.0.0.1:6381", store: redis}
      - {id: r2, address: "127.0.0.1:6382", store: redis}
  - id: g1
    nodes:
      - {id: s0, address: "127.0.0.1:6390", store: redis}
      - {id: s1, address: "127.0.0.1:6391", store: redis}
indexes:
  - {name: products, shards: 16, rf: 1}
)";

inline coordinator::CoordinatorConfig FastConfig() {
  coordinator::CoordinatorConfig c;
  c.worker_lease_ttl = absl::Milliseconds(600);
  c.max_clock_drift = absl::Milliseconds(50);
  c.migration.drain_timeout = absl::Milliseconds(100);
  c.migration.max_write_stall = absl::Seconds(5);
  c.migration.retain_moved_shard = absl::ZeroDuration();
  c.migration.catch_up_threshold = 10;
  return c;
}

// The config the stepper tests decide with: FastConfig() with a 2 s stall
// limit, 3 stall retries and 2 task retries.
inline coordinator::CoordinatorConfig StepperConfig() {
  coordinator::CoordinatorConfig c = FastConfig();
  c.migration.max_write_stall = absl::Seconds(2);
  c.migration.max_stall_retries = 3;
  c.migration.task_retries = 2;
  return c;
}

// What a fence or a copy read of `node` under `incarnation`, up to `seq`.
inline v1::Watermark Mark(const std::string& node, const std::string& incarnation,
                          uint64_t seq = 0) {
  v1::Watermark w;
  w.set_node(node);
  w.set_incarnation(incarnation);
  w.set_seq(seq);
  return w;
}

// A store that hands every call to the real one; the stores below change one call.
class ForwardingStateStore : public coordinator::StateStore {
 public:
  explicit ForwardingStateStore(std::unique_ptr<coordinator::StateStore> inner)
      : inner_(std::move(inner)) {}
  absl::StatusOr<coordinator::LoadedState> Load() override { return inner_->Load(); }
  uint64_t LeaderTerm() const override { return inner_->LeaderTerm(); }
  absl::Status Commit(const coordinator::StateWrite& write) override {
    return inner_->Commit(write);
  }
  absl::StatusOr<std::vector<std::string>> PlanEvents(uint64_t plan_id) override {
    return inner_->PlanEvents(plan_id);
  }
  absl::StatusOr<std::vector<std::string>> RecentAudit(int limit) override {
    return inner_->RecentAudit(limit);
  }

 private:
  std::unique_ptr<coordinator::StateStore> inner_;
};

// The real store, with every committed StateWrite handed to `on_commit` after it
// committed: what the coordinator made durable, write by write.
class ObservedStateStore : public ForwardingStateStore {
 public:
  using Observer = std::function<void(const coordinator::StateWrite&)>;
  ObservedStateStore(std::unique_ptr<coordinator::StateStore> inner, Observer on_commit)
      : ForwardingStateStore(std::move(inner)), on_commit_(std::move(on_commit)) {}
  absl::Status Commit(const coordinator::StateWrite& write) override {
    absl::Status s = ForwardingStateStore::Commit(write);
    if (s.ok()) on_commit_(write);
    return s;
  }

 private:
  Observer on_commit_;
};

// The real store, refusing every commit (UNAVAILABLE, nothing written) while
// `*fail` is set: a commit that etcd could not take (an election, a timeout).
class FlakyStateStore : public ForwardingStateStore {
 public:
  FlakyStateStore(std::unique_ptr<coordinator::StateStore> inner, const std::atomic<bool>* fail)
      : ForwardingStateStore(std::move(inner)), fail_(fail) {}
  absl::Status Commit(const coordinator::StateWrite& write) override {
    if (fail_->load()) return absl::UnavailableError("test: the state store refuses commits");
    return ForwardingStateStore::Commit(write);
  }

 private:
  const std::atomic<bool>* fail_;
};

// A coordinator with its gRPC services on an OS-assigned loopback port.
// `fail_commits` (optional): commits are refused while it is set.
class RunningCoordinator {
 public:
  RunningCoordinator(const std::string& dir, coordinator::CoordinatorConfig config,
                     bool start_runner = true, ObservedStateStore::Observer on_commit = nullptr,
                     const std::atomic<bool>* fail_commits = nullptr) {
    auto sqlite = coordinator::SqliteStateStore::Open(dir + "/coordinator.db");
    EXPECT_TRUE(sqlite.ok()) << sqlite.status();
    std::unique_ptr<coordinator::StateStore> store = std::move(*sqlite);
    if (on_commit) {
      store = std::make_unique<ObservedStateStore>(std::move(store), std::move(on_commit));
    }
    if (fail_commits != nullptr) {
      store = std::make_unique<FlakyStateStore>(std::move(store), fail_commits);
    }
    auto core = coordinator::Coordinator::Create(config, std::move(store), SystemClock::Default());
    EXPECT_TRUE(core.ok()) << core.status();
    core_ = std::move(*core);
    op_ = std::make_unique<coordinator::CoordinatorService>(core_.get(), "test");
    wc_ = std::make_unique<coordinator::WorkerControlService>(core_.get());
    auto server = StartGrpcServer("127.0.0.1:0", {op_.get(), wc_.get()});
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = std::move(server->server);
    port_ = server->port;
    stub_ = v1::Coordinator::NewStub(
        grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
    if (start_runner) core_->Start(absl::Milliseconds(10));
  }
  ~RunningCoordinator() {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    core_->Stop();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  v1::Coordinator::Stub& stub() { return *stub_; }
  coordinator::Coordinator& core() { return *core_; }

 private:
  std::unique_ptr<coordinator::Coordinator> core_;
  std::unique_ptr<coordinator::CoordinatorService> op_;
  std::unique_ptr<coordinator::WorkerControlService> wc_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_COORDINATOR_TEST_UTIL_H_
