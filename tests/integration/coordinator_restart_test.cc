// SIGKILL of the real miroir-coordinator binary mid-plan, then a restart on the
// same data dir (DESIGN §6 "Coordinator restart", issue 3 item 7): the plan
// resumes and ends done, no move skips a state, and no epoch is published twice
// with different tables. The worker is a FakeWorker speaking WorkerControl.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "common/grpc_server.h"
#include "coordinator/move_machine.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "miroir/v1/coordinator.grpc.pb.h"
#include "tests/coordinator/fake_worker.h"

namespace miroir::testing {
namespace {

namespace v1 = ::miroir::v1;

// A loopback socket that accepts connections (nothing answers on them): the
// address of the node the plan adds passes the coordinator's pre-flight while
// the fake worker plays the node.
class ListeningSocket {
 public:
  ListeningSocket() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  ~ListeningSocket() { close(fd_); }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

constexpr char kConfig[] = R"(worker_lease_ttl: 600ms
max_clock_drift: 50ms
migration:
  drain_timeout: 100ms
  max_write_stall: 5s
  retain_moved_shard: 0s
  catch_up_threshold: 10
  max_cutovers_per_node: 0  # the kill comes once every move waits in the held state
anti_entropy:
  enabled: true
)";

constexpr char kFleet[] = R"(groups:
  - id: g0
    nodes:
      - {id: r0, address: "127.0.0.1:6380"}
      - {id: r1, address: "127.0.0.1:6381"}
  - id: g1
    nodes:
      - {id: s0, address: "127.0.0.1:6390"}
indexes:
  - {name: products, shards: 8, rf: 1}
)";

class CoordinatorRestart : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(WriteFile(dir_.File("c.yaml"), kConfig)); }

  void Launch() {
    RemoveAll(dir_.File("port"));
    ProcessOptions o;
    o.binary = MIROIR_COORDINATOR_BIN;
    o.args = {"--listen",   "127.0.0.1:0",     "--port-file", dir_.File("port"),
              "--data-dir", dir_.File("data"), "--config",    dir_.File("c.yaml")};
    o.log_path = dir_.File("coordinator.log");
    auto p = Process::Start(o);
    ASSERT_TRUE(p.ok()) << p.status();
    proc_ = std::move(*p);
    int port = 0;
    for (int i = 0; i < 500 && port == 0; ++i) {
      std::string text = ReadFileOrEmpty(dir_.File("port"));
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port)) port = 0;
      if (port == 0) absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_NE(port, 0) << proc_->LogTail();
    address_ = "127.0.0.1:" + std::to_string(port);
    stub_ =
        v1::Coordinator::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  v1::GetPlanResponse GetPlan(uint64_t id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetPlanRequest req;
    req.set_id(id);
    v1::GetPlanResponse resp;
    grpc::Status st = stub_->GetPlan(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  // Runs a plan, SIGKILLs the coordinator once every move reached `hold_state`
  // (the worker holds the task of that state), restarts it and checks.
  void KillAndResume(v1::TaskKind held, v1::MoveState hold_state) {
    Launch();
    {
      grpc::ClientContext ctx;
      v1::InitClusterRequest req;
      req.set_fleet_yaml(kFleet);
      v1::InitClusterResponse resp;
      ASSERT_TRUE(stub_->InitCluster(&ctx, req, &resp).ok());
    }
    auto w1 = std::make_unique<FakeWorker>(address_, "w-before");
    w1->Hold(held);
    w1->Start();
    v1::Plan plan;
    {
      grpc::ClientContext ctx;
      v1::CreatePlanRequest req;
      req.set_kind(v1::PLAN_ADD_NODE);
      req.set_node_id("r2");
      req.set_group("g0");
      req.set_address(new_node_.address());
      v1::CreatePlanResponse resp;
      grpc::Status st = stub_->CreatePlan(&ctx, req, &resp);
      ASSERT_TRUE(st.ok()) << st.error_message();
      plan = resp.plan();
    }
    ASSERT_GT(plan.moves_size(), 0);
    bool reached = false;
    for (int i = 0; i < 1000 && !reached; ++i) {
      auto p = GetPlan(plan.id());
      reached = true;
      for (const auto& m : p.plan().moves()) reached = reached && m.state() == hold_state;
      if (!reached) absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_TRUE(reached) << GetPlan(plan.id()).DebugString();
    for (int i = 0; i < 500 && w1->held_tasks().empty(); ++i) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    const std::vector<v1::Task> held_tasks = w1->held_tasks();
    ASSERT_FALSE(held_tasks.empty());
    const uint64_t leased_generation = held_tasks.front().lease_generation();
    ASSERT_TRUE(proc_->Kill().ok());
    auto before_views = w1->views();
    w1->Stop();

    Launch();  // same data dir
    const v1::GetPlanResponse after_kill = GetPlan(plan.id());
    for (const auto& m : after_kill.plan().moves()) EXPECT_EQ(m.state(), hold_state);
    FakeWorker w2(address_, "w-after");
    w2.Start();
    v1::GetPlanResponse done;
    for (int i = 0; i < 1500; ++i) {
      done = GetPlan(plan.id());
      if (done.plan().state() != v1::PLAN_RUNNING) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_EQ(done.plan().state(), v1::PLAN_DONE) << done.DebugString() << proc_->LogTail();

    // The held task was leased again with a higher generation.
    bool releases = false;
    for (const auto& k : w2.kinds()) releases = releases || k == held;
    EXPECT_TRUE(releases);
    EXPECT_GE(leased_generation, 1u);

    // No move skipped a state: every event starts where the previous one ended and
    // is a legal transition.
    std::map<uint64_t, std::string> last;
    for (const auto& e : done.history()) {
      if (e.move_id() == 0) continue;
      auto it = last.find(e.move_id());
      if (it != last.end()) {
        EXPECT_EQ(e.from(), it->second) << "move " << e.move_id();
      }
      last[e.move_id()] = e.to();
    }
    for (const auto& m : done.plan().moves()) EXPECT_EQ(last[m.id()], "done");
    // Same epoch, same table, before and after the crash.
    auto after_views = w2.views();
    int common = 0;
    for (const auto& [epoch, view] : before_views) {
      auto it = after_views.find(epoch);
      if (it == after_views.end()) continue;
      ++common;
      EXPECT_EQ(view, it->second) << "epoch " << epoch << " published with two tables";
    }
    EXPECT_GE(common, 1);  // the restart re-published the last epoch first
    w2.Stop();
    proc_->Terminate();
  }

  TempDir dir_{"coord-restart"};
  std::unique_ptr<Process> proc_;
  ListeningSocket new_node_;
  std::string address_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(CoordinatorRestart, SigkillMidCopyResumes) {
  KillAndResume(v1::TASK_BACKFILL, v1::MOVE_COPYING);
}

TEST_F(CoordinatorRestart, SigkillMidPauseResumes) {
  KillAndResume(v1::TASK_FENCE, v1::MOVE_PAUSED);
}

TEST_F(CoordinatorRestart, SigkillMidCleanupResumes) {
  KillAndResume(v1::TASK_CLEANUP, v1::MOVE_CLEANUP);
}

// DESIGN §9: the data directory is held exclusively. Before the lock, a second
// miroir-coordinator on a live data directory started and served (it ran until
// the test's 10 s bound and answered GetStatus), so two processes committed
// their own tables to one SQLite file.
TEST_F(CoordinatorRestart, SecondCoordinatorOnALiveDataDirExits2NamingTheHolder) {
  Launch();
  auto second = RunToCompletion(
      MIROIR_COORDINATOR_BIN,
      {"--listen", "127.0.0.1:0", "--data-dir", dir_.File("data"), "--config", dir_.File("c.yaml")},
      dir_.path(), absl::Seconds(10));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->timed_out) << "the second coordinator kept running";
  EXPECT_EQ(second->exit_code, 2) << second->stderr_text;
  EXPECT_THAT(second->stderr_text, ::testing::HasSubstr("pid " + std::to_string(proc_->pid())));
  EXPECT_THAT(second->stderr_text, ::testing::HasSubstr("--data-dir"));
  // The first one is untouched and still serves.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetStatusResponse status;
  EXPECT_TRUE(stub_->GetStatus(&ctx, v1::GetStatusRequest(), &status).ok());

  // A SIGSTOPped holder still holds the directory: a restart beside it is refused
  // too, so it cannot commit behind the new one's back when it is continued.
  ASSERT_TRUE(proc_->Stop().ok());
  auto beside_stopped = RunToCompletion(
      MIROIR_COORDINATOR_BIN,
      {"--listen", "127.0.0.1:0", "--data-dir", dir_.File("data"), "--config", dir_.File("c.yaml")},
      dir_.path(), absl::Seconds(10));
  ASSERT_TRUE(beside_stopped.ok());
  EXPECT_EQ(beside_stopped->exit_code, 2) << beside_stopped->stderr_text;
  ASSERT_TRUE(proc_->Cont().ok());

  // A SIGKILLed holder leaves no stale lock: the restart takes the directory.
  ASSERT_TRUE(proc_->Kill().ok());
  Launch();
  EXPECT_TRUE(proc_->Running()) << proc_->LogTail();
  proc_->Terminate();
}

}  // namespace
}  // namespace miroir::testing
