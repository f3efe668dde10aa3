// In-process service tests: real gRPC server on 127.0.0.1:0, real SQLite file,
// and FakeWorker speaking the real WorkerControl protocol.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/route_sets.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/coordinator/fake_worker.h"
#include "tests/coordinator/test_util.h"

namespace miroir::testing {
namespace {

class ServiceTest : public ::testing::Test {
 protected:
  void StartCoordinator(coordinator::CoordinatorConfig cfg = FastConfig()) {
    coord_ = std::make_unique<RunningCoordinator>(dir_.path(), cfg);
  }
  void Init() {
    grpc::ClientContext ctx;
    v1::InitClusterRequest req;
    req.set_fleet_yaml(kFleet);
    v1::InitClusterResponse resp;
    ASSERT_TRUE(coord_->stub().InitCluster(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.epoch(), 1u);
  }
  v1::GetStatusResponse Status() {
    grpc::ClientContext ctx;
    v1::GetStatusResponse resp;
    EXPECT_TRUE(coord_->stub().GetStatus(&ctx, v1::GetStatusRequest(), &resp).ok());
    return resp;
  }
  v1::GetIndexResponse Index(const std::string& name) {
    grpc::ClientContext ctx;
    v1::GetIndexRequest req;
    req.set_name(name);
    v1::GetIndexResponse resp;
    EXPECT_TRUE(coord_->stub().GetIndex(&ctx, req, &resp).ok());
    return resp;
  }
  grpc::Status CreatePlan(const v1::CreatePlanRequest& req, v1::Plan* plan = nullptr) {
    grpc::ClientContext ctx;
    v1::CreatePlanResponse resp;
    grpc::Status st = coord_->stub().CreatePlan(&ctx, req, &resp);
    if (plan) *plan = resp.plan();
    return st;
  }
  v1::GetPlanResponse GetPlan(uint64_t id) {
    grpc::ClientContext ctx;
    v1::GetPlanRequest req;
    req.set_id(id);
    v1::GetPlanResponse resp;
    EXPECT_TRUE(coord_->stub().GetPlan(&ctx, req, &resp).ok());
    return resp;
  }
  // Abort, pause or resume plan `id`.
  grpc::Status AbortPlan(uint64_t id) { return PlanCall(&v1::Coordinator::Stub::AbortPlan, id); }
  grpc::Status PausePlan(uint64_t id) { return PlanCall(&v1::Coordinator::Stub::PausePlan, id); }
  grpc::Status ResumePlan(uint64_t id) { return PlanCall(&v1::Coordinator::Stub::ResumePlan, id); }
  // The plan most tests run: add node r3 to g0.
  static v1::CreatePlanRequest AddR3() {
    v1::CreatePlanRequest req;
    req.set_kind(v1::PLAN_ADD_NODE);
    req.set_node_id("r3");
    req.set_group("g0");
    req.set_address("127.0.0.1:7003");
    return req;
  }
  // Waits (bounded) until the plan leaves running/aborting.
  v1::GetPlanResponse WaitPlanEnded(uint64_t id) {
    v1::GetPlanResponse resp;
    for (int i = 0; i < 1500; ++i) {
      resp = GetPlan(id);
      auto s = resp.plan().state();
      if (s == v1::PLAN_DONE || s == v1::PLAN_FAILED || s == v1::PLAN_ABORTED) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return resp;
  }
  static std::vector<std::string> MoveStates(const v1::GetPlanResponse& p, uint64_t move_id) {
    std::vector<std::string> out;
    for (const auto& e : p.history()) {
      if (e.move_id() == move_id) out.push_back(e.to());
    }
    return out;
  }
  static std::set<std::string> Owners(const v1::ShardRoute& r, const std::string& group) {
    for (const auto& o : r.owners()) {
      if (o.group() == group) return {o.nodes().begin(), o.nodes().end()};
    }
    return {};
  }

  TempDir dir_;
  std::unique_ptr<RunningCoordinator> coord_;

 private:
  using PlanMethod = grpc::Status (v1::Coordinator::Stub::*)(grpc::ClientContext*,
                                                             const v1::PlanIdRequest&,
                                                             v1::GetPlanResponse*);
  grpc::Status PlanCall(PlanMethod method, uint64_t id) {
    grpc::ClientContext ctx;
    v1::PlanIdRequest req;
    req.set_id(id);
    v1::GetPlanResponse resp;
    return (coord_->stub().*method)(&ctx, req, &resp);
  }
};

TEST_F(ServiceTest, InitTwiceIsAlreadyExistsAndChangesNothing) {
  StartCoordinator();
  Init();
  grpc::ClientContext ctx;
  v1::InitClusterRequest req;
  req.set_fleet_yaml(kFleet);
  v1::InitClusterResponse resp;
  EXPECT_EQ(coord_->stub().InitCluster(&ctx, req, &resp).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Status().epoch(), 1u);
}

TEST_F(ServiceTest, InvalidInputGetsTheRightCodeAndChangesNothing) {
  StartCoordinator();
  {
    // Bad fleet before init: nothing is initialised.
    grpc::ClientContext ctx;
    v1::InitClusterRequest req;
    req.set_fleet_yaml("groups:\n  - id: g0\n    nodes:\n      - {id: r0, address: nope}\n");
    v1::InitClusterResponse resp;
    grpc::Status st = coord_->stub().InitCluster(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("groups[0].nodes[0].address"), std::string::npos)
        << st.error_message();
    EXPECT_FALSE(Status().initialized());
  }
  Init();
  const uint64_t epoch = Status().epoch();
  auto create_index = [&](const std::string& name, uint32_t shards, uint32_t rf) {
    grpc::ClientContext ctx;
    v1::CreateIndexRequest req;
    req.set_name(name);
    req.set_shards(shards);
    req.set_rf(rf);
    v1::CreateIndexResponse resp;
    return coord_->stub().CreateIndex(&ctx, req, &resp);
  };
  EXPECT_EQ(create_index("", 4, 1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(create_index("Bad Name", 4, 1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status s0 = create_index("x", 0, 1);
  EXPECT_EQ(s0.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s0.error_message().find("shards"), std::string::npos);
  EXPECT_EQ(create_index("x", 65537, 1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status rf = create_index("x", 4, 3);  // g1 has 2 nodes
  EXPECT_EQ(rf.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(rf.error_message().find("rf"), std::string::npos);
  EXPECT_EQ(create_index("products", 4, 1).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  {
    grpc::ClientContext ctx;
    v1::GetIndexRequest req;
    req.set_name("nope");
    v1::GetIndexResponse resp;
    EXPECT_EQ(coord_->stub().GetIndex(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::SetAliasRequest req;
    req.set_alias("shop");
    req.set_index("nope");
    v1::SetAliasResponse resp;
    EXPECT_EQ(coord_->stub().SetAlias(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::MarkNodeFailedRequest req;
    req.set_id("zz");
    v1::MarkNodeFailedResponse resp;
    EXPECT_EQ(coord_->stub().MarkNodeFailed(&ctx, req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    // ForgetNode: unknown -> NOT_FOUND, not failed -> FAILED_PRECONDITION, nothing changed.
    auto forget = [&](const std::string& id) {
      grpc::ClientContext ctx;
      v1::ForgetNodeRequest req;
      req.set_id(id);
      v1::ForgetNodeResponse resp;
      return coord_->stub().ForgetNode(&ctx, req, &resp);
    };
    const auto before = coord_->core().ListNodes();
    grpc::Status unknown = forget("zz");
    EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(unknown.error_message().find("id"), std::string::npos);
    grpc::Status active = forget("r0");
    EXPECT_EQ(active.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(active.error_message().find("not marked failed"), std::string::npos);
    EXPECT_EQ(forget("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    const auto after = coord_->core().ListNodes();
    ASSERT_EQ(before.size(), after.size());
    for (size_t i = 0; i < before.size(); ++i) {
      EXPECT_EQ(before[i].SerializeAsString(), after[i].SerializeAsString());
    }
  }
  {
    v1::CreatePlanRequest req;
    req.set_kind(v1::PLAN_ADD_NODE);
    req.set_node_id("r9");
    req.set_group("g7");
    req.set_address("127.0.0.1:7000");
    grpc::Status st = CreatePlan(req);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(st.error_message().find("group"), std::string::npos);
    req.set_group("g0");
    req.set_node_id("r0");
    EXPECT_EQ(CreatePlan(req).error_code(), grpc::StatusCode::ALREADY_EXISTS);
    req.set_node_id("r9");
    req.set_address("no-port");
    st = CreatePlan(req);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("address"), std::string::npos);
    v1::CreatePlanRequest bad_kind;
    EXPECT_EQ(CreatePlan(bad_kind).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    v1::CreatePlanRequest remove;
    remove.set_kind(v1::PLAN_REMOVE_NODE);
    remove.set_node_id("nope");
    EXPECT_EQ(CreatePlan(remove).error_code(), grpc::StatusCode::NOT_FOUND);
    v1::CreatePlanRequest restore;
    restore.set_kind(v1::PLAN_RESTORE);
    restore.set_node_id("r0");
    EXPECT_EQ(CreatePlan(restore).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    v1::CreatePlanRequest window = req;
    window.set_address("127.0.0.1:7000");
    window.set_schedule_window("not-a-window");
    EXPECT_EQ(CreatePlan(window).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  for (auto call : {0, 1, 2, 3}) {
    grpc::ClientContext ctx;
    v1::PlanIdRequest req;
    req.set_id(call == 3 ? 0 : 999);
    v1::GetPlanResponse resp;
    grpc::Status st = call == 0   ? coord_->stub().PausePlan(&ctx, req, &resp)
                      : call == 1 ? coord_->stub().ResumePlan(&ctx, req, &resp)
                                  : coord_->stub().AbortPlan(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(),
              call == 3 ? grpc::StatusCode::INVALID_ARGUMENT : grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::GetPlanRequest req;
    req.set_id(12345);
    v1::GetPlanResponse resp;
    EXPECT_EQ(coord_->stub().GetPlan(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::CheckWindowRequest req;
    req.set_schedule_window("25:00-26:00");
    v1::CheckWindowResponse resp;
    EXPECT_EQ(coord_->stub().CheckWindow(&ctx, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext ctx;
    v1::VerifyRequest req;
    req.set_index("products");
    v1::VerifyResponse resp;
    EXPECT_EQ(coord_->stub().Verify(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  v1::GetStatusResponse after = Status();
  EXPECT_EQ(after.epoch(), epoch);
  EXPECT_EQ(after.plans_size(), 0);
  EXPECT_EQ(after.nodes_size(), 5);
  EXPECT_EQ(after.indexes_size(), 1);
}

// Schedule windows (DESIGN §6 gates): a start outside the plan's window is
// refused naming the time and the window, and saves nothing; with force it starts
// and the plan records the bypass; inside the window it starts plainly.
// The success path of ForgetNode over gRPC: a failed node is forgotten once,
// stored so (ListNodes), and a second forget is refused.
TEST_F(ServiceTest, ForgetNodeForgetsAFailedNodeOnce) {
  StartCoordinator();
  Init();
  {
    grpc::ClientContext ctx;
    v1::MarkNodeFailedRequest req;
    req.set_id("r2");
    v1::MarkNodeFailedResponse resp;
    ASSERT_TRUE(coord_->stub().MarkNodeFailed(&ctx, req, &resp).ok());
  }
  auto forget = [&](v1::ForgetNodeResponse* resp) {
    grpc::ClientContext ctx;
    v1::ForgetNodeRequest req;
    req.set_id("r2");
    return coord_->stub().ForgetNode(&ctx, req, resp);
  };
  v1::ForgetNodeResponse resp;
  grpc::Status st = forget(&resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.node().id(), "r2");
  EXPECT_TRUE(resp.node().forgotten());
  EXPECT_EQ(resp.node().status(), v1::NODE_FAILED);
  EXPECT_FALSE(resp.possible_loss().empty());
  bool stored = false;
  for (const auto& n : coord_->core().ListNodes()) stored |= n.id() == "r2" && n.forgotten();
  EXPECT_TRUE(stored);
  v1::ForgetNodeResponse again;
  grpc::Status twice = forget(&again);
  EXPECT_EQ(twice.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(twice.error_message().find("already forgotten"), std::string::npos);
}

TEST_F(ServiceTest, AStartOutsideTheWindowIsRefusedUnlessForced) {
  StartCoordinator();
  Init();
  const uint64_t epoch = Status().epoch();
  // "HH:MM-HH:MM" UTC ranges relative to now: [now+2h, now+3h) excludes now,
  // [now-1h, now+1h) includes it (either may wrap midnight).
  auto hhmm = [](absl::Duration from_now) {
    return absl::FormatTime("%H:%M", absl::Now() + from_now, absl::UTCTimeZone());
  };
  const std::string outside = hhmm(absl::Hours(2)) + "-" + hhmm(absl::Hours(3));
  const std::string inside = hhmm(-absl::Hours(1)) + "-" + hhmm(absl::Hours(1));
  v1::CreatePlanRequest req = AddR3();
  req.set_schedule_window(outside);
  grpc::Status refused = CreatePlan(req);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("outside the schedule window"), std::string::npos)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find(outside), std::string::npos) << refused.error_message();
  EXPECT_EQ(Status().plans_size(), 0);
  EXPECT_EQ(Status().epoch(), epoch);

  req.set_force(true);
  v1::Plan forced;
  ASSERT_TRUE(CreatePlan(req, &forced).ok());
  EXPECT_TRUE(forced.force());
  bool recorded = false;
  for (const auto& w : forced.warnings()) recorded = recorded || absl::StrContains(w, "forced");
  EXPECT_TRUE(recorded) << forced.DebugString();

  // The forced plan holds its shards (no worker runs it): abort it first. A move
  // the runner already took to `prepare` is undone by a CLEANUP task on r3, so a
  // worker joins once the abort is in (it can only help the abort along).
  ASSERT_TRUE(AbortPlan(forced.id()).ok());
  FakeWorker cleaner(coord_->address(), "w-abort");
  cleaner.Start();
  ASSERT_EQ(WaitPlanEnded(forced.id()).plan().state(), v1::PLAN_ABORTED);
  cleaner.Stop();
  v1::CreatePlanRequest plain = req;
  plain.set_force(false);
  plain.set_group("g1");
  plain.set_node_id("s9");
  plain.set_address("127.0.0.1:7009");
  plain.set_schedule_window(inside);
  v1::Plan started;
  grpc::Status ok = CreatePlan(plain, &started);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_FALSE(started.force());
  EXPECT_TRUE(started.warnings().empty() || !absl::StrContains(started.warnings(0), "forced"));
}

TEST_F(ServiceTest, DeltaSkipRefusedWithAntiEntropyOffEvenWhenForced) {
  auto cfg = FastConfig();
  cfg.anti_entropy.enabled = false;
  StartCoordinator(cfg);
  Init();
  v1::CreatePlanRequest req = AddR3();
  req.set_skip_delta_pass(true);
  req.set_force(true);
  grpc::Status st = CreatePlan(req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("migration.skip_delta_pass=true"), std::string::npos);
  EXPECT_NE(st.error_message().find("anti_entropy.enabled=false"), std::string::npos);
  EXPECT_EQ(Status().plans_size(), 0);
  EXPECT_EQ(Status().nodes_size(), 5);
}

TEST_F(ServiceTest, DryRunSavesNothingAndListsMinimalMoves) {
  StartCoordinator();
  Init();
  v1::CreatePlanRequest req = AddR3();
  req.set_dry_run(true);
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  EXPECT_EQ(plan.id(), 0u);
  ASSERT_GT(plan.moves_size(), 0);
  for (const auto& m : plan.moves()) {
    EXPECT_EQ(m.group(), "g0");
    ASSERT_EQ(m.new_owners_size(), 1);
    EXPECT_EQ(m.new_owners(0), "r3");
  }
  EXPECT_EQ(Status().plans_size(), 0);
  EXPECT_EQ(Status().nodes_size(), 5);
  EXPECT_EQ(Status().epoch(), 1u);
}

TEST_F(ServiceTest, ADryRunRefusesWhatTheRealRunWouldRefuse) {
  StartCoordinator();
  Init();
  v1::Plan first;
  ASSERT_TRUE(CreatePlan(AddR3(), &first).ok());
  // A second add to g0 touches shards the first plan's moves touch: the real run
  // is refused by the conflict gate, and so is its preview.
  v1::CreatePlanRequest second = AddR3();
  second.set_node_id("r4");
  second.set_address("127.0.0.1:7004");
  grpc::Status real = CreatePlan(second);
  ASSERT_EQ(real.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << real.error_message();
  EXPECT_NE(real.error_message().find("plan refused: conflict"), std::string::npos)
      << real.error_message();
  second.set_dry_run(true);
  grpc::Status preview = CreatePlan(second);
  EXPECT_EQ(preview.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // The same refusal (the move's state at the end of the message may have moved on).
  auto head = [](const std::string& m) { return m.substr(0, m.find(" (move ")); };
  EXPECT_EQ(head(preview.error_message()), head(real.error_message()));
  EXPECT_EQ(Status().plans_size(), 1);
}

TEST_F(ServiceTest, AddingANodeWhoseAddressDoesNotAnswerIsRefusedAtCreation) {
  StartCoordinator();
  Init();
  std::vector<std::string> probed;
  coord_->core().set_address_probe([&](const std::string& address) {
    probed.push_back(address);
    return absl::UnavailableError("connect: Connection refused");
  });
  for (bool dry_run : {false, true}) {
    v1::CreatePlanRequest req = AddR3();
    req.set_dry_run(dry_run);
    grpc::Status st = CreatePlan(req);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(st.error_message(),
              "plan refused: node r3: address 127.0.0.1:7003 does not answer (connect: "
              "Connection refused)");
  }
  v1::CreatePlanRequest group;
  group.set_kind(v1::PLAN_ADD_GROUP);
  group.set_group("g2");
  for (const char* id : {"t0", "t1"}) {
    v1::Node* n = group.add_nodes();
    n->set_id(id);
    n->set_address(std::string("127.0.0.1:75") + (id[1] == '0' ? "00" : "01"));
    n->set_store("redis");
  }
  grpc::Status st = CreatePlan(group);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("node t0: address 127.0.0.1:7500"), std::string::npos)
      << st.error_message();
  EXPECT_EQ(probed,
            (std::vector<std::string>{"127.0.0.1:7003", "127.0.0.1:7003", "127.0.0.1:7500"}));
  // Nothing changed: no plan, no node, same epoch.
  EXPECT_EQ(Status().plans_size(), 0);
  EXPECT_EQ(Status().nodes_size(), 5);
  EXPECT_EQ(Status().epoch(), 1u);
  // A probe that answers lets the same plan through.
  coord_->core().set_address_probe([](const std::string&) { return absl::OkStatus(); });
  EXPECT_TRUE(CreatePlan(AddR3()).ok());
}

TEST_F(ServiceTest, AddNodeRunsEveryStateWithAWorker) {
  StartCoordinator();
  Init();
  const auto before = Index("products");
  FakeWorker worker(coord_->address(), "w1");
  worker.ProbeStaleGeneration();
  worker.Start();
  v1::CreatePlanRequest req = AddR3();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  ASSERT_GT(plan.moves_size(), 0);
  auto done = WaitPlanEnded(plan.id());
  ASSERT_EQ(done.plan().state(), v1::PLAN_DONE) << done.DebugString();
  const std::vector<std::string> expected = {"prepare",     "dual_write", "copying",
                                             "catching_up", "paused",     "final_delta",
                                             "active",      "cleanup",    "done"};
  std::set<uint32_t> moved;
  for (const auto& m : done.plan().moves()) {
    EXPECT_EQ(MoveStates(done, m.id()), expected) << "move " << m.id();
    moved.insert(m.shard());
  }
  // A stale lease generation was refused, the right one accepted.
  EXPECT_GE(worker.stale_refused(), 1);
  EXPECT_GE(worker.accepted(), 1);
  auto kinds = worker.kinds();
  for (auto k : {v1::TASK_PREPARE, v1::TASK_BACKFILL, v1::TASK_CATCH_UP, v1::TASK_FENCE,
                 v1::TASK_FINAL_DELTA, v1::TASK_CLEANUP}) {
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), k), kinds.end()) << v1::TaskKind_Name(k);
  }
  // Moved shards now belong to r3 in g0; no other shard and no g1 owner changed.
  const auto after = Index("products");
  ASSERT_EQ(after.routes_size(), 1);
  for (int s = 0; s < 16; ++s) {
    const auto& b = before.routes(0).routes(s);
    const auto& a = after.routes(0).routes(s);
    EXPECT_EQ(Owners(a, "g1"), Owners(b, "g1"));
    EXPECT_EQ(a.state(), v1::SHARD_STABLE);
    if (moved.count(s)) {
      EXPECT_EQ(Owners(a, "g0"), std::set<std::string>{"r3"});
    } else {
      EXPECT_EQ(Owners(a, "g0"), Owners(b, "g0"));
    }
  }
  const v1::GetStatusResponse final_status = Status();
  for (const auto& n : final_status.nodes()) {
    if (n.id() == "r3") {
      EXPECT_EQ(n.status(), v1::NODE_ACTIVE);
    }
  }
  EXPECT_EQ(worker.last_view_epoch(), Status().epoch());
  worker.Stop();
}

TEST_F(ServiceTest, RemoveNodeReconcilesLeavingOwnerAndMovesOnlyItsShards) {
  StartCoordinator();
  Init();
  const auto before = Index("products");
  FakeWorker worker(coord_->address(), "w1");
  worker.Start();
  v1::CreatePlanRequest req;
  req.set_kind(v1::PLAN_REMOVE_NODE);
  req.set_node_id("r1");
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  std::set<uint32_t> held_by_r1;
  for (int s = 0; s < 16; ++s) {
    if (Owners(before.routes(0).routes(s), "g0").count("r1")) held_by_r1.insert(s);
  }
  std::set<uint32_t> moved;
  for (const auto& m : plan.moves()) moved.insert(m.shard());
  EXPECT_EQ(moved, held_by_r1);
  auto done = WaitPlanEnded(plan.id());
  ASSERT_EQ(done.plan().state(), v1::PLAN_DONE) << done.DebugString();
  for (const auto& m : done.plan().moves()) {
    auto states = MoveStates(done, m.id());
    EXPECT_NE(std::find(states.begin(), states.end(), "reconciling"), states.end());
    EXPECT_EQ(states.back(), "done");
  }
  const auto after = Index("products");
  for (int s = 0; s < 16; ++s) {
    EXPECT_FALSE(Owners(after.routes(0).routes(s), "g0").count("r1"));
    EXPECT_EQ(Owners(after.routes(0).routes(s), "g1"), Owners(before.routes(0).routes(s), "g1"));
  }
  const v1::GetStatusResponse final_status = Status();
  for (const auto& n : final_status.nodes()) {
    if (n.id() == "r1") {
      EXPECT_EQ(n.status(), v1::NODE_REMOVED);
    }
  }
  worker.Stop();
}

TEST_F(ServiceTest, AbortDuringCopyRoutesBackAndWipesTheJoiningNode) {
  StartCoordinator();
  Init();
  const auto before = Index("products");
  FakeWorker worker(coord_->address(), "w1");
  worker.Hold(v1::TASK_BACKFILL);
  worker.Start();
  v1::CreatePlanRequest req = AddR3();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  // Wait (bounded) until a backfill is leased: the moves are copying, dual-written.
  for (int i = 0; i < 500 && worker.held_tasks().empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_FALSE(worker.held_tasks().empty());
  bool saw_dual = false;
  const v1::GetIndexResponse during = Index("products");
  for (const auto& r : during.routes(0).routes()) {
    saw_dual = saw_dual || r.state() == v1::SHARD_DUAL_WRITE;
  }
  EXPECT_TRUE(saw_dual);
  ASSERT_TRUE(AbortPlan(plan.id()).ok());
  auto done = WaitPlanEnded(plan.id());
  ASSERT_EQ(done.plan().state(), v1::PLAN_ABORTED) << done.DebugString();
  for (const auto& m : done.plan().moves()) EXPECT_EQ(m.state(), v1::MOVE_ABORTED);
  const auto after = Index("products");
  for (int s = 0; s < 16; ++s) {
    const auto& a = after.routes(0).routes(s);
    EXPECT_EQ(Owners(a, "g0"), Owners(before.routes(0).routes(s), "g0"));
    EXPECT_EQ(a.state(), v1::SHARD_STABLE);
    for (const auto& w : WriteSet(a)) {
      for (const auto& n : w.nodes()) EXPECT_NE(n, "r3");
    }
  }
  auto kinds = worker.kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), v1::TASK_CLEANUP), kinds.end());
  const v1::GetStatusResponse final_status = Status();
  for (const auto& n : final_status.nodes()) {
    if (n.id() == "r3") {
      EXPECT_EQ(n.status(), v1::NODE_REMOVED);
    }
  }
  worker.Stop();
}

// A plan whose moves failed before their cutover keeps those shards mid-move
// (partial copies on the joining node): abort rolls them back like a running
// plan's, and frees the shards for the next plan.
TEST_F(ServiceTest, AFailedPlanIsAbortedAndItsShardsFreed) {
  StartCoordinator();
  Init();
  const auto before = Index("products");
  FakeWorker worker(coord_->address(), "w1");
  worker.Fail(v1::TASK_BACKFILL);
  worker.Start();
  v1::CreatePlanRequest req = AddR3();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  auto failed = WaitPlanEnded(plan.id());
  ASSERT_EQ(failed.plan().state(), v1::PLAN_FAILED) << failed.DebugString();
  // Its failed moves still hold their shards.
  v1::CreatePlanRequest other = req;
  other.set_node_id("r4");
  other.set_address("127.0.0.1:7004");
  grpc::Status conflict = CreatePlan(other);
  EXPECT_EQ(conflict.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(conflict.error_message().find("mid-move"), std::string::npos)
      << conflict.error_message();

  ASSERT_TRUE(AbortPlan(plan.id()).ok());
  auto done = WaitPlanEnded(plan.id());
  ASSERT_EQ(done.plan().state(), v1::PLAN_ABORTED) << done.DebugString();
  for (const auto& m : done.plan().moves()) EXPECT_EQ(m.state(), v1::MOVE_ABORTED);
  auto kinds = worker.kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), v1::TASK_CLEANUP), kinds.end())
      << "the joining node's partial copies were not wiped";
  const auto after = Index("products");
  for (int s = 0; s < 16; ++s) {
    const auto& a = after.routes(0).routes(s);
    EXPECT_EQ(Owners(a, "g0"), Owners(before.routes(0).routes(s), "g0"));
    EXPECT_EQ(a.state(), v1::SHARD_STABLE);
  }
  const v1::GetStatusResponse st = Status();
  for (const auto& n : st.nodes()) {
    if (n.id() == "r3") {
      EXPECT_EQ(n.status(), v1::NODE_REMOVED);
    }
  }
  // Ended for good now: a second abort is refused and changes nothing.
  grpc::Status again = AbortPlan(plan.id());
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(GetPlan(plan.id()).plan().state(), v1::PLAN_ABORTED);
  // The shards are free again.
  worker.StopFailing(v1::TASK_BACKFILL);
  v1::Plan next;
  ASSERT_TRUE(CreatePlan(other, &next).ok());
  EXPECT_EQ(WaitPlanEnded(next.id()).plan().state(), v1::PLAN_DONE);
  worker.Stop();
}

TEST_F(ServiceTest, AConflictingPlanIsRefusedNamingTheShard) {
  StartCoordinator();
  Init();
  v1::CreatePlanRequest req = AddR3();
  ASSERT_TRUE(CreatePlan(req).ok());  // no worker: it stays mid-move
  v1::CreatePlanRequest remove;
  remove.set_kind(v1::PLAN_REMOVE_NODE);
  remove.set_node_id("r0");
  grpc::Status st = CreatePlan(remove);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("conflict"), std::string::npos) << st.error_message();
  EXPECT_EQ(Status().plans_size(), 1);
}

TEST_F(ServiceTest, MissReportsScheduleOneRecoveryPassPerNodeShard) {
  StartCoordinator();
  Init();
  v1::MissReport report;
  report.set_worker_id("w1");
  for (int i = 0; i < 3; ++i) {
    auto* m = report.add_misses();
    m->set_node("s0");
    m->set_index("products");
    m->set_shard(2);
    m->set_count(1);
  }
  auto n = coord_->core().ReportMisses(report);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(Status().pending_recovery_passes(), 1u);
  FakeWorker worker(coord_->address(), "w1");
  worker.Start();
  for (int i = 0; i < 500 && Status().pending_recovery_passes() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Status().pending_recovery_passes(), 0u);
  auto kinds = worker.kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), v1::TASK_RECONCILE), kinds.end());
  worker.Stop();
}

// A recovery pass that fails (here: not retryable, as a fenced one is) is not
// given up: it is leased again after its backoff until it succeeds. Before the
// fix it was deleted at its first non-retryable failure (1 RECONCILE seen).
TEST_F(ServiceTest, FailedRecoveryPassIsRetriedUntilItSucceeds) {
  StartCoordinator();
  Init();
  FakeWorker worker(coord_->address(), "w1");
  worker.Fail(v1::TASK_RECONCILE);
  worker.Start();
  v1::MissReport report;
  report.set_worker_id("w1");
  auto* m = report.add_misses();
  m->set_node("s0");
  m->set_index("products");
  m->set_shard(2);
  m->set_count(1);
  ASSERT_TRUE(coord_->core().ReportMisses(report).ok());
  auto reconciles = [&] {
    auto k = worker.kinds();
    return std::count(k.begin(), k.end(), v1::TASK_RECONCILE);
  };
  for (int i = 0; i < 500 && reconciles() < 3; ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_GE(reconciles(), 3) << "the failed pass was not leased again";
  EXPECT_EQ(Status().pending_recovery_passes(), 1u);
  worker.StopFailing(v1::TASK_RECONCILE);
  for (int i = 0; i < 500 && Status().pending_recovery_passes() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Status().pending_recovery_passes(), 0u);
  worker.Stop();
}

// DESIGN §4: a worker session that ends without its `stopping` miss report (a
// crash, a lapsed lease) may have lost misses: every written shard gets a shard
// pass. One that said it stops, with its last misses in, ends clean.
TEST_F(ServiceTest, SessionEndWithoutStoppingReportSchedulesShardPasses) {
  StartCoordinator();
  Init();
  auto workers_live = [&] { return Status().workers_size(); };
  {
    FakeWorker clean(coord_->address(), "w-clean");
    clean.Start();
    for (int i = 0; i < 250 && workers_live() == 0; ++i) absl::SleepFor(absl::Milliseconds(20));
    ASSERT_EQ(workers_live(), 1);
    v1::MissReport last;
    last.set_worker_id("w-clean");
    last.set_stopping(true);
    ASSERT_TRUE(coord_->core().ReportMisses(last).ok());
    clean.Stop();
  }
  for (int i = 0; i < 250 && workers_live() > 0; ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(workers_live(), 0);
  absl::SleepFor(absl::Milliseconds(100));  // a few runner ticks after the expiry
  EXPECT_EQ(Status().pending_recovery_passes(), 0u);
  {
    FakeWorker crashed(coord_->address(), "w-crashed");
    crashed.Start();
    for (int i = 0; i < 250 && workers_live() == 0; ++i) absl::SleepFor(absl::Milliseconds(20));
    ASSERT_EQ(workers_live(), 1);
    crashed.Stop();  // no stopping report: as a crash
  }
  // 16 shards, each written to one node of g0 and one of g1.
  for (int i = 0; i < 250 && Status().pending_recovery_passes() < 16; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Status().pending_recovery_passes(), 16u);
}

// The sessions are durable: a worker the coordinator knew before a restart that
// does not come back within the restart's grace (lease TTL + drift) ended unclean
// for all anyone knows. One that had sent its `stopping` report did not.
TEST_F(ServiceTest, WorkerGoneAcrossARestartGetsShardPassesUnlessItEndedClean) {
  StartCoordinator();
  Init();
  auto workers_live = [&] { return Status().workers_size(); };
  auto register_and_lose = [&](const std::string& id, bool clean) {
    FakeWorker w(coord_->address(), id);
    w.Start();
    for (int i = 0; i < 250 && workers_live() == 0; ++i) absl::SleepFor(absl::Milliseconds(20));
    ASSERT_EQ(workers_live(), 1);
    if (clean) {
      v1::MissReport last;
      last.set_worker_id(id);
      last.set_stopping(true);
      ASSERT_TRUE(coord_->core().ReportMisses(last).ok());
    }
    coord_.reset();  // the coordinator goes first: it never sees the worker end
    w.Stop();
    StartCoordinator();
  };
  register_and_lose("w-clean", /*clean=*/true);
  absl::SleepFor(absl::Milliseconds(1500));  // past the grace of 650 ms
  EXPECT_EQ(Status().pending_recovery_passes(), 0u);
  register_and_lose("w-gone", /*clean=*/false);
  for (int i = 0; i < 250 && Status().pending_recovery_passes() < 16; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Status().pending_recovery_passes(), 16u);
}

// DESIGN §4 "Reads": the pending recovery passes reach every worker as a
// versioned list outside the epoch — on register, on each change, and in answer
// to the session's miss report (misses_through) — and leave it once done.
TEST_F(ServiceTest, PendingRecoveryPassesReachWorkersAsAVersionedReadExclusionList) {
  StartCoordinator();
  Init();
  const uint64_t epoch = Status().epoch();
  FakeWorker reporter(coord_->address(), "w1");
  FakeWorker other(coord_->address(), "w2");
  reporter.Hold(v1::TASK_RECONCILE);
  other.Hold(v1::TASK_RECONCILE);
  reporter.Start();
  other.Start();
  auto wait_for = [](auto cond) {
    for (int i = 0; i < 500 && !cond(); ++i) absl::SleepFor(absl::Milliseconds(10));
    return cond();
  };
  ASSERT_TRUE(wait_for([&] { return other.read_exclusion_lists() > 0; }));
  const uint64_t v0 = other.last_read_exclusions().version();
  EXPECT_EQ(other.last_read_exclusions().exclusions_size(), 0);

  v1::MissReport report;
  report.set_worker_id("w1");
  report.set_seq(7);
  auto* m = report.add_misses();
  m->set_node("s0");
  m->set_index("products");
  m->set_shard(2);
  m->set_count(1);
  reporter.SendMisses(report);
  ASSERT_TRUE(wait_for([&] { return reporter.last_read_exclusions().misses_through() == 7; }));
  v1::ReadExclusions answer = reporter.last_read_exclusions();
  ASSERT_EQ(answer.exclusions_size(), 1);
  EXPECT_EQ(answer.exclusions(0).node(), "s0");
  EXPECT_EQ(answer.exclusions(0).shard(), 2u);
  EXPECT_GT(answer.version(), v0);
  ASSERT_TRUE(wait_for([&] { return other.last_read_exclusions().exclusions_size() == 1; }));
  EXPECT_EQ(other.last_read_exclusions().misses_through(), 0u);  // not its report
  EXPECT_EQ(Status().epoch(), epoch) << "a miss cost an epoch";

  // The pass completes: the list is emptied at a newer version.
  ASSERT_TRUE(
      wait_for([&] { return reporter.held_tasks().size() + other.held_tasks().size() == 1; }));
  reporter.ReleaseHeld(v1::TASK_RECONCILE);
  other.ReleaseHeld(v1::TASK_RECONCILE);
  ASSERT_TRUE(wait_for([&] { return other.last_read_exclusions().exclusions_size() == 0; }));
  EXPECT_GT(other.last_read_exclusions().version(), answer.version());
  EXPECT_EQ(Status().pending_recovery_passes(), 0u);
  reporter.Stop();
  other.Stop();
}

TEST_F(ServiceTest, VerifyAggregatesWorkerDigests) {
  StartCoordinator();
  Init();
  FakeWorker worker(coord_->address(), "w1");
  worker.Start();
  for (int i = 0; i < 100 && Status().workers_size() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::VerifyRequest req;
  req.set_index("products");
  v1::VerifyResponse resp;
  grpc::Status st = coord_->stub().Verify(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.shards_size(), 16);
  EXPECT_EQ(resp.divergent(), 0u);
  for (const auto& v : resp.shards()) EXPECT_EQ(v.nodes_size(), 2);  // one owner per group
  worker.Stop();
}

TEST_F(ServiceTest, StateSurvivesARestartOnTheSameFile) {
  StartCoordinator();
  Init();
  v1::CreatePlanRequest req = AddR3();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  for (int i = 0; i < 200; ++i) {  // let the runner start the moves (no worker: they wait)
    if (GetPlan(plan.id()).plan().moves(0).state() != v1::MOVE_PENDING) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  const uint64_t epoch = Status().epoch();
  coord_.reset();
  StartCoordinator();
  EXPECT_GE(Status().epoch(), epoch);
  auto p = GetPlan(plan.id());
  EXPECT_EQ(p.plan().moves_size(), plan.moves_size());
  EXPECT_NE(p.plan().moves(0).state(), v1::MOVE_PENDING);
  // With a worker the restarted coordinator finishes the plan.
  FakeWorker worker(coord_->address(), "w2");
  worker.Start();
  EXPECT_EQ(WaitPlanEnded(plan.id()).plan().state(), v1::PLAN_DONE);
  worker.Stop();
}

TEST_F(ServiceTest, ExpiredWorkerLeaseReassignsTheTaskAndRefusesItsCheckpoints) {
  StartCoordinator();
  Init();
  auto a = std::make_unique<FakeWorker>(coord_->address(), "w-a");
  a->Hold(v1::TASK_BACKFILL);
  a->Start();
  v1::CreatePlanRequest req = AddR3();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  for (int i = 0; i < 500 && a->held_tasks().empty(); ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_FALSE(a->held_tasks().empty());
  const v1::Task stale = a->held_tasks().front();
  a->Stop();  // no more heartbeats: the lease runs out
  FakeWorker b(coord_->address(), "w-b");
  b.Start();
  auto done = WaitPlanEnded(plan.id());
  ASSERT_EQ(done.plan().state(), v1::PLAN_DONE);
  auto kinds = b.kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), v1::TASK_BACKFILL), kinds.end());
  v1::TaskProgress late;
  late.set_task_id(stale.id());
  late.set_lease_generation(stale.lease_generation());
  EXPECT_FALSE(coord_->core().TaskProgress("w-a", late));
  b.Stop();
}

// A checkpoint the store could not save (etcd electing its leader, a commit that
// timed out) is not a refusal: the run goes on and a later checkpoint is saved.
// Before the fix it was answered as a stale lease: the worker stopped the run
// while the task stayed leased to it, nothing re-leased it, and its move stayed
// in copying (an etcd member killed mid-plan). A stale generation is refused.
TEST_F(ServiceTest, ACheckpointNotSavedIsNotRefusedAsStale) {
  std::atomic<bool> fail_commits{false};
  coord_ =
      std::make_unique<RunningCoordinator>(dir_.path(), FastConfig(), true, nullptr, &fail_commits);
  Init();
  auto a = std::make_unique<FakeWorker>(coord_->address(), "w-a");
  a->Hold(v1::TASK_BACKFILL);
  a->Start();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(AddR3(), &plan).ok());
  for (int i = 0; i < 500 && a->held_tasks().empty(); ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_FALSE(a->held_tasks().empty());
  const v1::Task held = a->held_tasks().front();
  v1::TaskProgress progress;
  progress.set_task_id(held.id());
  progress.set_lease_generation(held.lease_generation());
  progress.mutable_checkpoint()->set_documents(7);
  fail_commits = true;
  EXPECT_TRUE(coord_->core().TaskProgress("w-a", progress));
  fail_commits = false;
  EXPECT_TRUE(coord_->core().TaskProgress("w-a", progress));
  uint64_t copied = 0;
  const v1::GetPlanResponse now = GetPlan(plan.id());
  for (const auto& m : now.plan().moves()) {
    if (m.task_id() == held.id()) copied = m.documents_copied();
  }
  EXPECT_EQ(copied, 7u);
  progress.set_lease_generation(held.lease_generation() + 1);
  EXPECT_FALSE(coord_->core().TaskProgress("w-a", progress));
  a->Stop();
}

// A step whose commit failed did not happen: its transitions are not logged
// (a deposed leader's last step failed in etcd, and its log said
// "paused -> final_delta" for a transition no one committed). The step is
// redone, and logged, once a commit goes through.
TEST_F(ServiceTest, AStepNotCommittedIsNotLoggedAsATransition) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  std::atomic<bool> fail_commits{false};
  coord_ = std::make_unique<RunningCoordinator>(dir_.path(), FastConfig(),
                                                /*start_runner=*/false, nullptr, &fail_commits);
  Init();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(AddR3(), &plan).ok());
  sink->flush();
  const size_t before = captured.str().size();
  fail_commits = true;
  for (int i = 0; i < 3; ++i) coord_->core().TickForTest();
  sink->flush();
  const std::string failing = captured.str().substr(before);
  EXPECT_TRUE(absl::StrContains(failing, "step lines not committed")) << failing;
  EXPECT_FALSE(absl::StrContains(failing, " -> ")) << failing;
  const v1::GetPlanResponse held = GetPlan(plan.id());
  for (const auto& m : held.plan().moves()) EXPECT_EQ(m.state(), v1::MOVE_PENDING);
  fail_commits = false;
  coord_->core().TickForTest();
  sink->flush();
  const std::string committed = captured.str().substr(before + failing.size());
  EXPECT_TRUE(absl::StrContains(committed, "pending -> prepare")) << committed;
  bool stepped = false;
  const v1::GetPlanResponse now = GetPlan(plan.id());
  for (const auto& m : now.plan().moves()) {
    stepped = stepped || m.state() != v1::MOVE_PENDING;
  }
  EXPECT_TRUE(stepped);
  coord_.reset();
  spdlog::set_default_logger(previous);
}

// DESIGN §6: a destructive task leased again carries an epoch committed and
// published after its previous lease (here none was committed meanwhile, so the
// lease publishes one), never above the published epoch; the new holder got that
// view before the task. Before the fix: the prepare carried epoch 3 with 2
// published, and the re-lease carried the same 3.
TEST_F(ServiceTest, AReLeasedPrepareCarriesAnEpochPublishedAfterItsPreviousLease) {
  StartCoordinator();
  Init();
  auto a = std::make_unique<FakeWorker>(coord_->address(), "w-a");
  a->Hold(v1::TASK_PREPARE);
  a->Start();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(AddR3(), &plan).ok());
  for (int i = 0; i < 500 && a->held_tasks().empty(); ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_FALSE(a->held_tasks().empty());
  const v1::Task stale = a->held_tasks().front();
  EXPECT_LE(stale.epoch(), coord_->core().View()->epoch());  // E0: published
  a->Stop();                                                 // the lease runs out
  FakeWorker b(coord_->address(), "w-b");
  b.Hold(v1::TASK_PREPARE);
  b.Start();
  for (int i = 0; i < 500 && b.held_tasks().empty(); ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_FALSE(b.held_tasks().empty());
  const v1::Task again = b.held_tasks().front();
  EXPECT_EQ(again.id(), stale.id());
  EXPECT_GT(again.lease_generation(), stale.lease_generation());
  EXPECT_GT(again.epoch(), stale.epoch());
  EXPECT_LE(again.epoch(), coord_->core().View()->epoch());
  EXPECT_TRUE(b.views().count(again.epoch())) << "the task's epoch was not published to it";
  b.ReleaseHeld(v1::TASK_PREPARE);
  auto done = WaitPlanEnded(plan.id());
  EXPECT_EQ(done.plan().state(), v1::PLAN_DONE);
  b.Stop();
}

// DESIGN §9a, §6 "Node rejoin": `nodes fail` fences the node's shards at the epoch
// that fails it (FENCE tasks naming only it), and a rejoin's prepare carries what
// to copy from it before the wipe: its incarnation at the failure, from sequence 0
// (no sync point), into the shard's current owners.
TEST_F(ServiceTest, MarkingANodeFailedFencesItsShardsAndItsRejoinRescuesFromIt) {
  StartCoordinator();
  Init();
  FakeWorker worker(coord_->address(), "w1");
  worker.Hold(v1::TASK_FENCE);
  worker.Hold(v1::TASK_PREPARE);
  worker.Start();
  worker.ReportNode("r1", "first");
  auto node = [&](const std::string& id) {
    const v1::GetStatusResponse status = Status();
    for (const auto& n : status.nodes()) {
      if (n.id() == id) return n;
    }
    return v1::Node();
  };
  for (int i = 0; i < 250 && node("r1").incarnation() != "first"; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(node("r1").incarnation(), "first");
  auto failed = coord_->core().MarkNodeFailed("r1");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->node().failed_incarnation(), "first");
  size_t owned = 0;
  auto index = coord_->core().GetIndex("products");
  ASSERT_TRUE(index.ok()) << index.status();
  for (const auto& g : index->routes()) {
    for (const auto& r : g.routes()) {
      for (const auto& o : r.owners()) {
        for (const auto& n : o.nodes()) owned += n == "r1" ? 1 : 0;
      }
    }
  }
  ASSERT_GT(owned, 0u);
  auto fences = [&] {
    std::vector<v1::Task> out;
    for (const auto& t : worker.held_tasks()) {
      if (t.kind() == v1::TASK_FENCE) out.push_back(t);
    }
    return out;
  };
  for (int i = 0; i < 250 && fences().size() < owned; ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(fences().size(), owned);
  for (const auto& t : fences()) {
    EXPECT_EQ(std::vector<std::string>(t.targets().begin(), t.targets().end()),
              std::vector<std::string>{"r1"});
    EXPECT_GE(t.epoch(), failed->epoch());
    EXPECT_EQ(t.move_id(), 0u);
  }
  worker.ReleaseHeld(v1::TASK_FENCE);

  v1::CreatePlanRequest req;
  req.set_kind(v1::PLAN_REJOIN);
  req.set_node_id("r1");
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  auto prepares = [&] {
    std::vector<v1::Task> out;
    for (const auto& t : worker.held_tasks()) {
      if (t.kind() == v1::TASK_PREPARE) out.push_back(t);
    }
    return out;
  };
  for (int i = 0; i < 250 && prepares().empty(); ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_FALSE(prepares().empty());
  for (const auto& t : prepares()) {
    EXPECT_EQ(t.rescue_from().node(), "r1");
    EXPECT_EQ(t.rescue_from().incarnation(), "first");
    EXPECT_EQ(t.rescue_from().seq(), 0u);
    ASSERT_FALSE(t.rescue_into().empty());
    for (const auto& n : t.rescue_into()) EXPECT_NE(n, "r1");
  }
  worker.ReleaseHeld(v1::TASK_PREPARE);
  auto done = WaitPlanEnded(plan.id());
  ASSERT_EQ(done.plan().state(), v1::PLAN_DONE) << done.DebugString();
  EXPECT_EQ(node("r1").status(), v1::NODE_ACTIVE);
  EXPECT_TRUE(node("r1").failed_incarnation().empty());
  worker.Stop();
}

// DESIGN §6: a node whose incarnation changed lost its data and fences; it must not
// count as a replica until it rejoined through a move.
TEST_F(ServiceTest, IncarnationChangeFailsTheNodeAndRejoinsItThroughAPlan) {
  StartCoordinator();
  Init();
  FakeWorker worker(coord_->address(), "w1");
  worker.Start();
  auto node = [&](const std::string& id) {
    const v1::GetStatusResponse status = Status();
    for (const auto& n : status.nodes()) {
      if (n.id() == id) return n;
    }
    return v1::Node();
  };
  worker.ReportNode("r1", "first");
  for (int i = 0; i < 250 && node("r1").incarnation() != "first"; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(node("r1").incarnation(), "first");
  EXPECT_TRUE(Status().plans().empty());  // the first incarnation seen is no change

  worker.ReportNode("r1", "second");
  uint64_t rejoin = 0;
  for (int i = 0; i < 250 && rejoin == 0; ++i) {
    grpc::ClientContext ctx;
    v1::ListPlansResponse plans;
    ASSERT_TRUE(coord_->stub().ListPlans(&ctx, v1::ListPlansRequest(), &plans).ok());
    for (const auto& p : plans.plans()) {
      if (p.kind() == v1::PLAN_REJOIN && p.node_id() == "r1") rejoin = p.id();
    }
    if (rejoin == 0) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_NE(rejoin, 0u) << "no rejoin plan for r1";
  auto done = WaitPlanEnded(rejoin);
  ASSERT_EQ(done.plan().state(), v1::PLAN_DONE) << done.DebugString();
  // Every shard r1 owns was copied back into it by a move with J = {r1}.
  ASSERT_GT(done.plan().moves_size(), 0);
  for (const auto& m : done.plan().moves()) {
    EXPECT_EQ(std::vector<std::string>(m.new_owners().begin(), m.new_owners().end()),
              std::vector<std::string>{"r1"});
  }
  EXPECT_EQ(node("r1").status(), v1::NODE_ACTIVE);
  EXPECT_EQ(node("r1").incarnation(), "second");
  // The change was recorded: the same incarnation again starts nothing.
  worker.ReportNode("r1", "second");
  absl::SleepFor(absl::Milliseconds(200));
  grpc::ClientContext ctx;
  v1::ListPlansResponse plans;
  ASSERT_TRUE(coord_->stub().ListPlans(&ctx, v1::ListPlansRequest(), &plans).ok());
  EXPECT_EQ(plans.plans_size(), 1);
  worker.Stop();
}

// Every worker reports every node, so one new incarnation arrives twice within
// milliseconds. It is handled once: the second report must not mark the node
// failed again while its rejoin plan runs (a failed node gets no writes, so the
// rejoined node would end up an owner outside its shards' write sets).
TEST_F(ServiceTest, IncarnationChangeReportedTwiceAtOnceIsHandledOnce) {
  StartCoordinator();
  Init();
  FakeWorker worker(coord_->address(), "w1");
  worker.Start();
  auto report = [](const std::string& inc) {
    v1::NodeReport r;
    r.set_node("r1");
    r.set_incarnation(inc);
    r.set_reachable(true);
    return r;
  };
  coord_->core().NodeReport(report("first"));
  for (int round = 0; round < 3; ++round) {
    const std::string next = absl::StrCat("inc-", round);
    worker.SetIncarnation("r1", next);  // what the rejoin's prepare fence finds
    absl::Notification go;
    std::vector<std::thread> reporters;
    for (int i = 0; i < 2; ++i) {
      reporters.emplace_back([&] {
        go.WaitForNotification();
        coord_->core().NodeReport(report(next));
      });
    }
    go.Notify();
    for (auto& t : reporters) t.join();
    grpc::ClientContext ctx;
    v1::ListPlansResponse plans;
    ASSERT_TRUE(coord_->stub().ListPlans(&ctx, v1::ListPlansRequest(), &plans).ok());
    uint64_t rejoin = 0;
    int rejoins = 0;
    for (const auto& p : plans.plans()) {
      if (p.kind() != v1::PLAN_REJOIN) continue;
      rejoin = std::max<uint64_t>(rejoin, p.id());
      ++rejoins;
    }
    EXPECT_EQ(rejoins, round + 1);
    ASSERT_NE(rejoin, 0u);
    ASSERT_EQ(WaitPlanEnded(rejoin).plan().state(), v1::PLAN_DONE);
    const v1::GetStatusResponse status = Status();
    for (const auto& n : status.nodes()) {
      if (n.id() == "r1") {
        EXPECT_EQ(n.status(), v1::NODE_ACTIVE) << "round " << round;
        EXPECT_EQ(n.incarnation(), next);
      }
    }
    // Every shard r1 owns writes to it again.
    int owned = 0;
    const v1::GetIndexResponse index = Index("products");
    for (const auto& g : index.routes()) {
      for (const auto& r : g.routes()) {
        if (!Owners(r, "g0").count("r1")) continue;
        ++owned;
        bool written = false;
        for (const auto& ws : WriteSet(r)) {
          for (const auto& n : ws.nodes()) written = written || n == "r1";
        }
        EXPECT_TRUE(written) << "round " << round << ": shard " << r.shard()
                             << " owned by r1 but not written to it";
      }
    }
    EXPECT_GT(owned, 0);
  }
  worker.Stop();
}

TEST_F(ServiceTest, IncarnationChangeWithAutoRejoinOffOnlyRecordsIt) {
  auto cfg = FastConfig();
  cfg.migration.auto_rejoin = false;
  StartCoordinator(cfg);
  Init();
  FakeWorker worker(coord_->address(), "w1");
  worker.Start();
  auto r1 = [&] {
    const v1::GetStatusResponse status = Status();
    for (const auto& n : status.nodes()) {
      if (n.id() == "r1") return n;
    }
    return v1::Node();
  };
  worker.ReportNode("r1", "first");
  worker.ReportNode("r1", "second");
  for (int i = 0; i < 250 && r1().incarnation() != "second"; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(r1().incarnation(), "second");
  EXPECT_EQ(r1().status(), v1::NODE_ACTIVE);
  EXPECT_TRUE(Status().plans().empty());
  worker.Stop();
}

TEST_F(ServiceTest, WatchPlanStreamsEveryChangeUntilTheEnd) {
  StartCoordinator();
  Init();
  FakeWorker w(coord_->address(), "w-1");
  v1::CreatePlanRequest req = AddR3();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::WatchPlanRequest wr;
  wr.set_id(plan.id());
  auto reader = coord_->stub().WatchPlan(&ctx, wr);
  v1::WatchPlanResponse msg;
  int messages = 0;
  std::set<std::string> seen;
  v1::PlanState last = v1::PLAN_STATE_UNSPECIFIED;
  // No worker yet: the plan cannot pass prepare before the watch has begun.
  ASSERT_TRUE(reader->Read(&msg));
  ++messages;
  last = msg.plan().state();
  w.Start();
  while (reader->Read(&msg)) {
    ++messages;
    if (msg.has_event()) seen.insert(msg.event().to());
    last = msg.plan().state();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last, v1::PLAN_DONE);
  // prepare may precede the watch (the first message carries the state then).
  for (const char* s : {"dual_write", "copying", "catching_up", "paused", "final_delta", "active",
                        "cleanup", "done"}) {
    EXPECT_TRUE(seen.count(s)) << s;
  }
  EXPECT_GT(messages, 9);
  w.Stop();
}

// Pausing a plan holds its moves where they are, except a cutover under way: it
// holds writes, so it finishes to `active` and stops there until resumed.
TEST_F(ServiceTest, PausingAPlanMidCutoverLetsTheCutoverFinish) {
  StartCoordinator();
  Init();
  auto w = std::make_unique<FakeWorker>(coord_->address(), "w-1");
  w->Hold(v1::TASK_FENCE);
  w->Start();
  v1::CreatePlanRequest req = AddR3();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  auto count = [](const v1::GetPlanResponse& p, v1::MoveState state) {
    int n = 0;
    for (const auto& m : p.plan().moves()) n += m.state() == state ? 1 : 0;
    return n;
  };
  for (int i = 0; i < 500 && count(GetPlan(plan.id()), v1::MOVE_PAUSED) == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GT(count(GetPlan(plan.id()), v1::MOVE_PAUSED), 0);
  ASSERT_TRUE(PausePlan(plan.id()).ok());
  // The held FENCE is released when w-1's lease runs out; w-2 answers it.
  w->Stop();
  w.reset();
  FakeWorker w2(coord_->address(), "w-2");
  w2.Start();
  v1::GetPlanResponse now;
  for (int i = 0; i < 500; ++i) {
    now = GetPlan(plan.id());
    if (count(now, v1::MOVE_PAUSED) + count(now, v1::MOVE_FINAL_DELTA) == 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(count(now, v1::MOVE_PAUSED) + count(now, v1::MOVE_FINAL_DELTA), 0) << now.DebugString();
  EXPECT_GT(count(now, v1::MOVE_ACTIVE), 0) << now.DebugString();
  EXPECT_EQ(count(now, v1::MOVE_DONE), 0) << now.DebugString();  // stopped at active
  EXPECT_EQ(now.plan().state(), v1::PLAN_PAUSED);
  const v1::GetIndexResponse index = Index("products");
  for (const auto& r : index.routes(0).routes()) {
    EXPECT_NE(r.state(), v1::SHARD_PAUSED) << "shard " << r.shard() << " still holds writes";
  }
  ASSERT_TRUE(ResumePlan(plan.id()).ok());
  EXPECT_EQ(WaitPlanEnded(plan.id()).plan().state(), v1::PLAN_DONE);
  w2.Stop();
}

// Every move of "add r3" writes to r3: with max_cutovers_per_node 1 (the default)
// their cutovers (paused .. active) never overlap, in the order the plan's events
// were committed.
TEST_F(ServiceTest, OneCutoverAtATimePerNode) {
  StartCoordinator();
  Init();
  FakeWorker w(coord_->address(), "w-1");
  w.Start();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(AddR3(), &plan).ok());
  const v1::GetPlanResponse end = WaitPlanEnded(plan.id());
  ASSERT_EQ(end.plan().state(), v1::PLAN_DONE);
  w.Stop();
  std::set<uint64_t> cutting;
  size_t most = 0, cutovers = 0;
  for (const auto& e : end.history()) {
    if (e.move_id() == 0) continue;
    const bool in = e.to() == "paused" || e.to() == "final_delta";
    if (in && cutting.insert(e.move_id()).second) ++cutovers;
    if (!in) cutting.erase(e.move_id());
    most = std::max(most, cutting.size());
  }
  EXPECT_EQ(cutovers, static_cast<size_t>(end.plan().moves_size()));
  EXPECT_GT(cutovers, 1u);
  EXPECT_EQ(most, 1u) << "cutovers overlapped on r3";
}

// DESIGN §6, "A joining node's incarnation": the store node r3 restarts empty
// (its fences now report another incarnation) while a move's task of `held` is
// in flight. Each move that recorded the old incarnation at prepare notices at its
// next re-read: before active it goes back to prepare (unpaused, at a published
// epoch), from active on it reconciles the leaving owners into r3 before deleting.
// r3 ends active with the new incarnation, and its report of it changes nothing.
class JoiningWiped : public ServiceTest,
                     public ::testing::WithParamInterface<std::tuple<v1::TaskKind, bool>> {};

TEST_P(JoiningWiped, TheMoveRedoesTheCopyOrReconcilesBeforeDeleting) {
  const auto [held, skip_delta] = GetParam();
  StartCoordinator();
  Init();
  FakeWorker w(coord_->address(), "w-1");
  w.Hold(held);
  w.Start();
  w.ReportNode("r3", "inc-r3");
  v1::CreatePlanRequest req = AddR3();
  req.set_skip_delta_pass(skip_delta);
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  for (int i = 0; i < 500 && w.held_tasks().empty(); ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_FALSE(w.held_tasks().empty()) << "no " << v1::TaskKind_Name(held) << " task held";
  const uint64_t wiped_move = w.held_tasks().front().move_id();
  w.SetIncarnation("r3", "inc-r3-new");
  w.ReportNode("r3", "inc-r3-new");  // joining: the plan decides, nothing recorded yet
  w.ReleaseHeld(held);
  const v1::GetPlanResponse end = WaitPlanEnded(plan.id());
  ASSERT_EQ(end.plan().state(), v1::PLAN_DONE) << end.DebugString();

  const std::vector<std::string> states = MoveStates(end, wiped_move);
  const std::string at = held == v1::TASK_CLEANUP    ? "cleanup"
                         : held == v1::TASK_BACKFILL ? "copying"
                                                     : "final_delta";
  const std::string next = held == v1::TASK_CLEANUP ? "reconciling" : "prepare";
  auto it = std::find(states.begin(), states.end(), at);
  ASSERT_NE(it, states.end()) << absl::StrJoin(states, ",");
  ASSERT_NE(it + 1, states.end()) << absl::StrJoin(states, ",");
  EXPECT_EQ(*(it + 1), next) << absl::StrJoin(states, ",");
  EXPECT_EQ(states.back(), "done");
  bool said = false;
  for (const auto& e : end.history()) {
    if (e.move_id() != wiped_move || e.from() != at || e.to() != next) continue;
    said = true;
    EXPECT_NE(e.reason().find("joining node r3 changed incarnation inc-r3 -> inc-r3-new"),
              std::string::npos)
        << e.reason();
    // Back to prepare publishes (writes unpaused, r3 out of the write set).
    EXPECT_EQ(e.epoch() != 0, next == "prepare") << e.DebugString();
  }
  EXPECT_TRUE(said);
  if (next == "reconciling") {
    auto kinds = w.kinds();
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), v1::TASK_RECONCILE), kinds.end());
  }
  for (const auto& m : end.plan().moves()) {
    ASSERT_EQ(m.joining_size(), 1) << m.DebugString();
    EXPECT_EQ(m.joining(0).incarnation(), "inc-r3-new");
  }
  // r3 is active under the incarnation its moves copied into: its next report is
  // no change (no failure, no rejoin plan).
  w.ReportNode("r3", "inc-r3-new");
  absl::SleepFor(absl::Milliseconds(300));
  const v1::GetStatusResponse st = Status();
  for (const auto& n : st.nodes()) {
    if (n.id() != "r3") continue;
    EXPECT_EQ(n.status(), v1::NODE_ACTIVE);
    EXPECT_EQ(n.incarnation(), "inc-r3-new");
  }
  EXPECT_EQ(st.plans_size(), 0) << "a plan was created after the move: " << st.DebugString();
  w.Stop();
}

INSTANTIATE_TEST_SUITE_P(Tasks, JoiningWiped,
                         ::testing::Values(std::make_tuple(v1::TASK_FINAL_DELTA, false),
                                           std::make_tuple(v1::TASK_CLEANUP, false),
                                           std::make_tuple(v1::TASK_BACKFILL, true)),
                         [](const auto& info) {
                           return v1::TaskKind_Name(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) ? "_SkippedDelta" : "");
                         });

// A cutover task is leased in the commit that creates it: the first durable copy
// of every FENCE and FINAL_DELTA already carries lease generation 1 (one commit
// less on the write stall's path than creating it, then leasing it).
TEST_F(ServiceTest, ACutoverTaskIsLeasedInTheCommitThatCreatesIt) {
  absl::Mutex mu;
  std::map<uint64_t, v1::Task> first_written;  // task id -> its first committed copy
  coord_ = std::make_unique<RunningCoordinator>(
      dir_.path(), FastConfig(), /*start_runner=*/true, [&](const coordinator::StateWrite& w) {
        absl::MutexLock l(&mu);
        for (const auto& put : w.puts) {
          if (put.kind != coordinator::kKindTask || !put.value) continue;
          v1::Task t;
          ASSERT_TRUE(t.ParseFromString(*put.value));
          first_written.emplace(t.id(), t);
        }
      });
  Init();
  FakeWorker w(coord_->address(), "w-1");
  w.Start();
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(AddR3(), &plan).ok());
  ASSERT_EQ(WaitPlanEnded(plan.id()).plan().state(), v1::PLAN_DONE);
  w.Stop();
  absl::MutexLock l(&mu);
  int cutover_tasks = 0, backfills = 0;
  for (const auto& [id, t] : first_written) {
    if (t.kind() == v1::TASK_FENCE || t.kind() == v1::TASK_FINAL_DELTA) {
      ++cutover_tasks;
      EXPECT_EQ(t.lease_generation(), 1u) << v1::TaskKind_Name(t.kind()) << " task " << id;
    } else if (t.kind() == v1::TASK_BACKFILL) {
      ++backfills;
      EXPECT_EQ(t.lease_generation(), 0u) << "a backfill is leased by the next commit";
    }
  }
  EXPECT_GT(cutover_tasks, 0);
  EXPECT_GT(backfills, 0);
}

// Restart the coordinator (same SQLite file) while every move waits in a state
// whose task the worker holds; the plan must resume and finish.
class RestartInState
    : public ServiceTest,
      public ::testing::WithParamInterface<std::tuple<v1::PlanKind, v1::TaskKind, v1::MoveState>> {
};

TEST_P(RestartInState, ResumesAndFinishes) {
  const auto [kind, held, state] = GetParam();
  // Every move waits in `state` at once, cutovers included: no per-node limit.
  coordinator::CoordinatorConfig cfg = FastConfig();
  cfg.migration.max_cutovers_per_node = 0;
  StartCoordinator(cfg);
  Init();
  auto w = std::make_unique<FakeWorker>(coord_->address(), "w-1");
  // A cutover holds its nodes: no other task is leased onto them until it ends.
  // For every move to wait in a cutover state at once, they must all leave
  // catching_up together: hold each move's catch-up, then answer them in a burst.
  const bool cutover = state == v1::MOVE_PAUSED || state == v1::MOVE_FINAL_DELTA;
  w->Hold(cutover ? v1::TASK_CATCH_UP : held);
  w->Start();
  v1::CreatePlanRequest req;
  req.set_kind(kind);
  if (kind == v1::PLAN_ADD_NODE) {
    req.set_node_id("r3");
    req.set_group("g0");
    req.set_address("127.0.0.1:7003");
  } else {
    req.set_node_id("r1");
  }
  v1::Plan plan;
  ASSERT_TRUE(CreatePlan(req, &plan).ok());
  if (cutover) {
    const size_t moves = static_cast<size_t>(plan.moves_size());
    ASSERT_GT(moves, 0u);
    bool all_held = false;
    for (int i = 0; i < 500 && !all_held; ++i) {
      all_held = w->held_tasks().size() == moves;
      if (!all_held) absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_TRUE(all_held) << "not every move's catch-up was leased";
    w->Hold(held);
    w->ReleaseHeld(v1::TASK_CATCH_UP);
  }
  bool reached = false;
  for (int i = 0; i < 500 && !reached; ++i) {
    auto p = GetPlan(plan.id());
    reached = true;
    for (const auto& m : p.plan().moves()) reached = reached && m.state() == state;
    if (!reached) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(reached);
  w->Stop();
  coord_.reset();
  StartCoordinator(cfg);
  const v1::GetPlanResponse resumed = GetPlan(plan.id());
  for (const auto& m : resumed.plan().moves()) EXPECT_EQ(m.state(), state);
  FakeWorker w2(coord_->address(), "w-2");
  w2.Start();
  auto done = WaitPlanEnded(plan.id());
  EXPECT_EQ(done.plan().state(), v1::PLAN_DONE);
  std::map<uint64_t, std::string> last;
  for (const auto& e : done.history()) {
    if (e.move_id() == 0) continue;
    if (last.count(e.move_id())) {
      EXPECT_EQ(e.from(), last[e.move_id()]);
    }
    last[e.move_id()] = e.to();
  }
  w2.Stop();
}

INSTANTIATE_TEST_SUITE_P(
    States, RestartInState,
    ::testing::Values(
        std::make_tuple(v1::PLAN_ADD_NODE, v1::TASK_PREPARE, v1::MOVE_PREPARE),
        std::make_tuple(v1::PLAN_ADD_NODE, v1::TASK_BACKFILL, v1::MOVE_COPYING),
        std::make_tuple(v1::PLAN_ADD_NODE, v1::TASK_CATCH_UP, v1::MOVE_CATCHING_UP),
        std::make_tuple(v1::PLAN_ADD_NODE, v1::TASK_FENCE, v1::MOVE_PAUSED),
        std::make_tuple(v1::PLAN_ADD_NODE, v1::TASK_FINAL_DELTA, v1::MOVE_FINAL_DELTA),
        std::make_tuple(v1::PLAN_ADD_NODE, v1::TASK_CLEANUP, v1::MOVE_CLEANUP),
        std::make_tuple(v1::PLAN_REMOVE_NODE, v1::TASK_RECONCILE, v1::MOVE_RECONCILING)));

}  // namespace
}  // namespace miroir::testing
