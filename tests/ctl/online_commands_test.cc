// The online miroir-ctl commands, run as the real binary against a real gRPC
// server on loopback. The server is a scripted Coordinator (canned answers that
// exercise each client path: success, refusal, bad input, streams), so these tests
// pin the client's contract — flags -> request, response -> output and exit code —
// independently of the coordinator's logic, which has its own tests.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/grpc_server.h"
#include "miroir/v1/coordinator.grpc.pb.h"
#include "tests/ctl/ctl_runner.h"

namespace miroir {
namespace {

using miroir::testing::RunCtl;
namespace pb = miroir::v1;

pb::Plan SamplePlan(uint64_t id) {
  pb::Plan p;
  p.set_id(id);
  p.set_kind(pb::PLAN_ADD_NODE);
  p.set_state(id == 0 ? pb::PLAN_STATE_UNSPECIFIED : pb::PLAN_RUNNING);
  p.set_description("add node r3 to g0");
  p.set_est_duration_s(12.5);
  auto* m = p.add_moves();
  m->set_id(10);
  m->set_index("products");
  m->set_shard(3);
  m->set_group("g0");
  m->add_old_owners("r1");
  m->add_new_owners("r3");
  m->set_est_documents(1234);
  m->set_est_bytes(1263616);
  m->set_state(pb::MOVE_PENDING);
  auto* m2 = p.add_moves();
  m2->set_id(11);
  m2->set_index("products");
  m2->set_shard(9);
  m2->set_group("g0");
  m2->add_old_owners("r0");
  m2->add_old_owners("r2");
  m2->add_new_owners("r3");
  m2->add_new_owners("r2");
  m2->set_state(pb::MOVE_PENDING);
  return p;
}

// A loopback HOST:PORT that was just free: nothing listens there.
std::string UnusedLoopbackAddress() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return "127.0.0.1:1";
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

class ScriptedCoordinator final : public pb::Coordinator::Service {
 public:
  grpc::Status InitCluster(grpc::ServerContext*, const pb::InitClusterRequest* req,
                           pb::InitClusterResponse* resp) override {
    absl::MutexLock l(&mu_);
    if (!fleet_yaml_.empty()) {
      return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "cluster already initialised");
    }
    fleet_yaml_ = req->fleet_yaml();
    source_name_ = req->source_name();
    resp->set_epoch(1);
    return grpc::Status::OK;
  }
  grpc::Status GetStatus(grpc::ServerContext*, const pb::GetStatusRequest* req,
                         pb::GetStatusResponse* resp) override {
    {
      absl::MutexLock l(&mu_);
      last_recent_actions_ = req->recent_actions();
    }
    resp->set_leader("127.0.0.1:7400");
    resp->set_epoch(77);
    resp->set_initialized(true);
    auto* n = resp->add_nodes();
    n->set_id("r0");
    n->set_group("g0");
    n->set_address("127.0.0.1:6380");
    n->set_store("redis");
    n->set_status(pb::NODE_ACTIVE);
    *resp->add_plans() = SamplePlan(4);
    resp->add_indexes("products");
    resp->set_pending_recovery_passes(2);
    resp->set_coordinator_version("0.1.0+c0ffee");
    auto* w = resp->add_workers();
    w->set_id("w-new");
    w->set_address("127.0.0.1:7500");
    w->set_version("0.1.0+beef");
    auto* old = resp->add_workers();  // registered without a version (older build)
    old->set_id("w-old");
    old->set_address("127.0.0.1:7501");
    pb::Event* action = resp->add_recent_actions();
    action->set_time_ms(1796320800000);
    action->set_actor("ops-alice");
    action->set_call("Coordinator/PausePlan");
    action->set_reason("plan 4 (paused); 1 event(s)");
    return grpc::Status::OK;
  }
  grpc::Status CreatePlan(grpc::ServerContext*, const pb::CreatePlanRequest* req,
                          pb::CreatePlanResponse* resp) override {
    absl::MutexLock l(&mu_);
    last_plan_request_ = *req;
    if (req->node_id().empty() && req->kind() == pb::PLAN_ADD_NODE) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "node_id: required");
    }
    if (req->skip_delta_pass()) {
      // Worded as coordinator/move_gates.cc words it: the client must not prefix it again.
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "plan refused: delta pass is skipped and anti-entropy is disabled "
                          "(migration.skip_delta_pass=true, anti_entropy.enabled=false)");
    }
    if (req->node_id() == "taken") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "node_id: 'taken'\nalready used");
    }
    *resp->mutable_plan() = SamplePlan(req->dry_run() ? 0 : 5);
    return grpc::Status::OK;
  }
  grpc::Status CheckCluster(grpc::ServerContext*, const pb::CheckClusterRequest*,
                            pb::CheckClusterResponse* resp) override {
    resp->set_epoch(9);
    resp->set_workers(2);
    auto* n = resp->add_nodes();
    n->set_node("r0");
    n->set_group("g0");
    n->set_address("127.0.0.1:6380");
    n->set_status("active");
    n->set_reachable("yes");
    (*n->mutable_store_config())["appendonly"] = "yes";
    (*n->mutable_store_config())["appendfsync"] = "everysec";
    (*n->mutable_store_config())["maxmemory-policy"] = "noeviction";
    n->set_report_age_ms(2500);
    auto* f = resp->add_findings();
    f->set_check("store_config");
    f->set_subject("r0");
    f->set_severity("error");
    f->set_message("node r0 (127.0.0.1:6380): appendfsync is 'everysec', must be 'always'");
    resp->set_healthy(false);
    return grpc::Status::OK;
  }
  grpc::Status WatchPlan(grpc::ServerContext*, const pb::WatchPlanRequest* req,
                         grpc::ServerWriter<pb::WatchPlanResponse>* writer) override {
    if (req->id() == 404) return grpc::Status(grpc::StatusCode::NOT_FOUND, "plan 404 not found");
    pb::WatchPlanResponse msg;
    *msg.mutable_plan() = SamplePlan(req->id());
    writer->Write(msg);
    msg.mutable_plan()->mutable_moves(0)->set_state(pb::MOVE_COPYING);
    msg.mutable_plan()->mutable_moves(0)->set_documents_copied(600);
    auto* e = msg.mutable_event();
    e->set_time_ms(1795564800000);
    e->set_plan_id(req->id());
    e->set_move_id(10);
    e->set_from("dual_write");
    e->set_to("copying");
    e->set_reason("backfill leased");
    e->set_epoch(8);
    writer->Write(msg);
    msg.mutable_plan()->set_state(req->id() == 2 ? pb::PLAN_FAILED : pb::PLAN_DONE);
    e->set_move_id(0);
    e->set_from("running");
    e->set_to(req->id() == 2 ? "failed" : "done");
    e->set_reason(req->id() == 2 ? "move 10 failed" : "");
    e->set_epoch(0);
    writer->Write(msg);
    return grpc::Status::OK;
  }
  grpc::Status CheckWindow(grpc::ServerContext*, const pb::CheckWindowRequest* req,
                           pb::CheckWindowResponse* resp) override {
    resp->set_inside(req->schedule_window() == "02:00-06:00");
    resp->set_now_utc("03:15");
    resp->add_windows(req->schedule_window().empty() ? "22:00-01:00" : req->schedule_window());
    return grpc::Status::OK;
  }
  // Verify operations: "good" (id 5) ends consistent, "bad" (id 6) with shards
  // 1 and 3 divergent, "slow" (id 7) did not finish on shard 2; "missing" is
  // NOT_FOUND. GetVerify answers each ended; id 0 lists them.
  static pb::VerifyOperation Operation(uint64_t id) {
    pb::VerifyOperation op;
    op.set_id(id);
    op.set_index(id == 5 ? "good" : id == 6 ? "bad" : "slow");
    op.set_generation(3);
    op.set_state(id == 7 ? "did_not_finish" : "done");
    op.set_total(4);
    op.set_done(4);
    op.set_deadline_ms(absl::ToUnixMillis(absl::Now() + absl::Minutes(5)));
    for (uint32_t s = 0; s < 4; ++s) {
      auto* v = op.add_shards();
      v->set_shard(s);
      v->add_nodes("r0");
      v->add_nodes("r1");
      if (id == 7 && s == 2) {
        v->set_finished(false);
        v->set_error("task failed: node r1 unreachable");
        op.set_unfinished(1);
        continue;
      }
      v->set_finished(true);
      const bool bad = id == 6 && (s == 1 || s == 3);
      v->set_consistent(!bad);
      v->add_documents(10);
      v->add_documents(bad ? 9 : 10);
      v->add_digests("aa");
      v->add_digests(bad ? "bb" : "aa");
    }
    op.set_divergent(id == 6 ? 2 : 0);
    return op;
  }
  grpc::Status StartVerify(grpc::ServerContext*, const pb::StartVerifyRequest* req,
                           pb::VerifyOperation* resp) override {
    if (req->index() == "missing") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "index: unknown index 'missing'");
    }
    const uint64_t id = req->index() == "good" ? 5 : req->index() == "bad" ? 6 : 7;
    *resp = Operation(id);
    resp->set_state("running");
    resp->set_done(0);
    resp->clear_shards();
    return grpc::Status::OK;
  }
  grpc::Status GetVerify(grpc::ServerContext*, const pb::GetVerifyRequest* req,
                         pb::GetVerifyResponse* resp) override {
    if (req->id() == 0) {
      for (uint64_t id : {7, 6, 5}) *resp->add_operations() = Operation(id);
      return grpc::Status::OK;
    }
    if (req->id() < 5 || req->id() > 7) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "id: unknown verify operation 9");
    }
    *resp->add_operations() = Operation(req->id());
    return grpc::Status::OK;
  }

  uint32_t LastRecentActions() {
    absl::MutexLock l(&mu_);
    return last_recent_actions_;
  }
  pb::CreatePlanRequest LastPlanRequest() {
    absl::MutexLock l(&mu_);
    return last_plan_request_;
  }
  std::pair<std::string, std::string> Fleet() {
    absl::MutexLock l(&mu_);
    return {fleet_yaml_, source_name_};
  }

 private:
  absl::Mutex mu_;
  pb::CreatePlanRequest last_plan_request_ ABSL_GUARDED_BY(mu_);
  uint32_t last_recent_actions_ ABSL_GUARDED_BY(mu_) = 0;
  std::string fleet_yaml_ ABSL_GUARDED_BY(mu_);
  std::string source_name_ ABSL_GUARDED_BY(mu_);
};

class CtlOnline : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = StartGrpcServer("127.0.0.1:0", {&service_});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    address_ = "127.0.0.1:" + std::to_string(server_.port);
  }
  void TearDown() override {
    if (server_.server) server_.server->Shutdown();
  }
  miroir::testing::CtlResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--coordinator", address_, "--timeout", "20s"});
    return RunCtl(args);
  }

  ScriptedCoordinator service_;
  RunningServer server_;
  std::string address_;
};

TEST_F(CtlOnline, DryRunJsonIsExactlyTheCliShape) {
  auto r = Ctl({"plan", "add-node", "--id", "r3", "--group", "g0", "--address", "127.0.0.1:6390",
                "--dry-run", "--output", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"kind\":\"add_node\",\"moves\":["
            "{\"index\":\"products\",\"shard\":3,\"group\":\"g0\",\"old_owners\":[\"r1\"],"
            "\"new_owners\":[\"r3\"],\"est_documents\":1234,\"est_bytes\":1263616},"
            "{\"index\":\"products\",\"shard\":9,\"group\":\"g0\",\"old_owners\":[\"r0\",\"r2\"],"
            "\"new_owners\":[\"r3\",\"r2\"],\"est_documents\":0,\"est_bytes\":0}],"
            "\"est_duration_s\":12.5,\"warnings\":[]}\n");
  auto req = service_.LastPlanRequest();
  EXPECT_EQ(req.kind(), pb::PLAN_ADD_NODE);
  EXPECT_EQ(req.node_id(), "r3");
  EXPECT_EQ(req.group(), "g0");
  EXPECT_EQ(req.address(), "127.0.0.1:6390");
  EXPECT_EQ(req.store(), "redis");
  EXPECT_TRUE(req.dry_run());
  EXPECT_FALSE(req.force());
}

TEST_F(CtlOnline, PlanFlagsReachTheRequest) {
  auto r = Ctl({"plan", "add-group", "--group", "g2", "--nodes", "r7=127.0.0.1:7001, r8=h:7002",
                "--force", "--throttle", "500", "--schedule-window", "off-peak"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("plan 5 add_node running"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("plan watch 5"), std::string::npos) << r.out;
  auto req = service_.LastPlanRequest();
  EXPECT_EQ(req.kind(), pb::PLAN_ADD_GROUP);
  ASSERT_EQ(req.nodes_size(), 2);
  EXPECT_EQ(req.nodes(0).id(), "r7");
  EXPECT_EQ(req.nodes(0).address(), "127.0.0.1:7001");
  EXPECT_EQ(req.nodes(0).group(), "g2");
  EXPECT_EQ(req.nodes(1).id(), "r8");
  EXPECT_TRUE(req.force());
  EXPECT_FALSE(req.dry_run());
  EXPECT_EQ(req.throttle_docs_per_s(), 500u);
  EXPECT_EQ(req.schedule_window(), "off-peak");

  for (const auto& [verb, kind] :
       std::vector<std::pair<std::string, pb::PlanKind>>{{"remove-node", pb::PLAN_REMOVE_NODE},
                                                         {"restore", pb::PLAN_RESTORE},
                                                         {"rejoin", pb::PLAN_REJOIN}}) {
    auto rr = Ctl({"plan", verb, "--id", "r1"});
    ASSERT_EQ(rr.exit_code, 0) << rr.err;
    EXPECT_EQ(service_.LastPlanRequest().kind(), kind);
    EXPECT_EQ(service_.LastPlanRequest().node_id(), "r1");
  }
  auto rg = Ctl({"plan", "remove-group", "--group", "g1"});
  ASSERT_EQ(rg.exit_code, 0) << rg.err;
  EXPECT_EQ(service_.LastPlanRequest().kind(), pb::PLAN_REMOVE_GROUP);
  EXPECT_EQ(service_.LastPlanRequest().group(), "g1");
}

TEST_F(CtlOnline, RefusedPlanExitsOneWithTheGateOnOneLine) {
  auto r = Ctl({"plan", "remove-node", "--id", "r1", "--skip-delta-pass", "--force"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "error: plan refused: delta pass is skipped and anti-entropy is disabled "
            "(migration.skip_delta_pass=true, anti_entropy.enabled=false)\n");
  EXPECT_TRUE(service_.LastPlanRequest().skip_delta_pass());
  EXPECT_TRUE(service_.LastPlanRequest().force());
}

TEST_F(CtlOnline, ErrorsAreOneJsonLineOnStderrUnderOutputJson) {
  auto refused =
      Ctl({"plan", "remove-node", "--id", "r1", "--skip-delta-pass", "--output", "json"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.out, "");
  EXPECT_EQ(refused.err,
            "{\"error\":{\"code\":\"FAILED_PRECONDITION\",\"message\":\"plan refused: delta pass "
            "is skipped and anti-entropy is disabled (migration.skip_delta_pass=true, "
            "anti_entropy.enabled=false)\",\"exit_code\":1}}\n");
  auto usage = Ctl({"--output", "json", "plan", "nonsense"});
  EXPECT_EQ(usage.exit_code, 2);
  auto parsed = nlohmann::json::parse(usage.err);
  EXPECT_EQ(parsed["error"]["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(parsed["error"]["exit_code"], 2);
}

TEST_F(CtlOnline, CheckPrintsNodesAndFindingsAndExitsOneWhenUnhealthy) {
  auto r = Ctl({"check"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out,
            "epoch 9, 2 live worker(s)\n\n"
            "nodes:\n"
            "NODE  GROUP  ADDRESS         STATUS  REACHABLE  APPENDONLY  APPENDFSYNC  "
            "MAXMEMORY-POLICY  REPORTED\n"
            "r0    g0     127.0.0.1:6380  active  yes        yes         everysec     "
            "noeviction        2s ago\n\n"
            "findings:\n"
            "SEVERITY  CHECK         SUBJECT  MESSAGE\n"
            "error     store_config  r0       node r0 (127.0.0.1:6380): appendfsync is "
            "'everysec', must be 'always'\n\n"
            "unhealthy: 1 error(s), 0 warning(s)\n");
  EXPECT_EQ(r.err, "error: check found 1 problem(s)\n");
  auto j = Ctl({"check", "--output", "json"});
  EXPECT_EQ(j.exit_code, 1);
  auto parsed = nlohmann::json::parse(j.out);
  EXPECT_EQ(parsed["healthy"], false);
  EXPECT_EQ(parsed["findings"][0]["check"], "store_config");
  EXPECT_EQ(parsed["nodes"][0]["store_config"]["appendfsync"], "everysec");
}

TEST_F(CtlOnline, ServerInvalidArgumentExitsTwoOnOneLine) {
  auto r = Ctl({"plan", "add-node", "--id", "taken", "--group", "g0", "--address", "h:1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "error: plan refused: node_id: 'taken' already used\n");
}

TEST_F(CtlOnline, MalformedNodesFlagNeverReachesTheServer) {
  auto r = Ctl({"plan", "add-group", "--group", "g2", "--nodes", "r7=nohostport"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.ErrLines(), 1);
  EXPECT_NE(r.err.find("--nodes"), std::string::npos);
  EXPECT_EQ(service_.LastPlanRequest().kind(), pb::PLAN_KIND_UNSPECIFIED);
}

TEST_F(CtlOnline, StatusTableAndJson) {
  auto r = Ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("epoch: 77"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pending recovery passes: 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("r0  g0     127.0.0.1:6380  redis  active"), std::string::npos) << r.out;
  auto j = Ctl({"status", "--output", "json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto parsed = nlohmann::json::parse(j.out);
  EXPECT_EQ(parsed["epoch"], 77);  // a number: ids and counts have one type in every JSON
  EXPECT_EQ(parsed["nodes"][0]["status"], "NODE_ACTIVE");
}

TEST_F(CtlOnline, StatusShowsRecentActionsAndRefusesAnOutOfRangeCount) {
  auto r = Ctl({"status", "--recent-actions", "25"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(service_.LastRecentActions(), 25u);
  EXPECT_NE(r.out.find("recent actions:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2026-12-03T18:00:00Z  ops-alice  Coordinator/PausePlan  plan 4 (paused)"),
            std::string::npos)
      << r.out;
  for (const char* bad : {"0", "1001", "many"}) {
    auto refused = Ctl({"status", "--recent-actions", bad});
    EXPECT_EQ(refused.exit_code, 2) << bad;
    EXPECT_EQ(refused.ErrLines(), 1) << refused.err;
    EXPECT_NE(refused.err.find("--recent-actions"), std::string::npos) << refused.err;
    EXPECT_EQ(service_.LastRecentActions(), 25u) << "a refused count reached the server";
  }
}

TEST_F(CtlOnline, StatusShowsTheVersionsOfTheCoordinatorAndTheWorkers) {
  auto r = Ctl({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("coordinator version: 0.1.0+c0ffee\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("VERSION"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("w-new  127.0.0.1:7500  0.1.0+beef"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("w-old  127.0.0.1:7501  unknown"), std::string::npos) << r.out;
  auto j = Ctl({"status", "--output", "json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto parsed = nlohmann::json::parse(j.out);
  EXPECT_EQ(parsed["coordinator_version"], "0.1.0+c0ffee");
  EXPECT_EQ(parsed["workers"][0]["version"], "0.1.0+beef");
}

TEST_F(CtlOnline, CoordinatorFromTheEnvironment) {
  auto r = RunCtl({"status"}, {"MIROIR_COORDINATOR=" + address_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("coordinator: " + address_), std::string::npos);
}

TEST_F(CtlOnline, WatchPrintsOneLinePerChangeAndEndsWithTheFinalState) {
  auto r = Ctl({"plan", "watch", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "plan 1 add_node running: add node r3 to g0\n"
            "00:00:00 plan 1 move 10 (products/3 g0): dual_write -> copying (backfill leased) "
            "epoch 8\n"
            "00:00:00 plan 1: running -> done\n"
            "plan 1 done\n");
  auto failed = Ctl({"plan", "watch", "2"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_NE(failed.out.find("running -> failed (move 10 failed)"), std::string::npos);
  EXPECT_EQ(failed.err, "error: plan 2 ended failed\n");
  auto missing = Ctl({"plan", "watch", "404"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "error: plan 404 not found\n");
}

TEST_F(CtlOnline, WatchJsonIsOneObjectPerMessage) {
  auto r = Ctl({"--output", "json", "plan", "watch", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::vector<nlohmann::json> msgs;
  for (std::string line; std::getline(in, line);) msgs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[1]["event"]["to"], "copying");
  EXPECT_EQ(msgs[1]["plan"]["moves"][0]["documents_copied"], 600);
  EXPECT_EQ(msgs[2]["plan"]["state"], "done");
}

TEST_F(CtlOnline, CheckWindowExitCodeFollowsTheWindow) {
  auto inside = Ctl({"check-window", "--schedule-window", "02:00-06:00"});
  EXPECT_EQ(inside.exit_code, 0) << inside.err;
  EXPECT_EQ(inside.out, "now 03:15 UTC; windows: 02:00-06:00; inside\n");
  auto outside = Ctl({"check-window"});
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_EQ(outside.out, "now 03:15 UTC; windows: 22:00-01:00; outside\n");
  auto json = Ctl({"check-window", "--output", "json"});
  EXPECT_EQ(json.exit_code, 1);
  EXPECT_EQ(json.out, "{\"inside\":false,\"now_utc\":\"03:15\",\"windows\":[\"22:00-01:00\"]}\n");
}

TEST_F(CtlOnline, VerifyStartsAnOperationAndStatusFollowsIt) {
  auto started = Ctl({"verify", "--index", "good"});
  EXPECT_EQ(started.exit_code, 0) << started.err;
  EXPECT_EQ(started.out,
            "verify 5 of good started: 4 shards; follow it with: miroir-ctl verify status 5\n");
  auto good = Ctl({"verify", "--index", "good", "--wait"});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_NE(good.out.find("verify 5 of good (generation 3): done, 4/4 shards settled, 0 divergent"),
            std::string::npos)
      << good.out;
  auto bad = Ctl({"verify", "--index", "bad", "--wait"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err, "error: index bad: 2 divergent shard(s): 1, 3\n");
  EXPECT_NE(bad.out.find("3      NO          r1     9          bb\n"), std::string::npos)
      << bad.out;
  auto bad_status = Ctl({"verify", "status", "6"});
  EXPECT_EQ(bad_status.exit_code, 1);
  EXPECT_EQ(bad_status.out, bad.out);
  // Did not finish is not divergent: exit 3, its own message, the shard marked.
  auto slow = Ctl({"verify", "status", "--id", "7"});
  EXPECT_EQ(slow.exit_code, 3) << slow.err;
  EXPECT_EQ(slow.err,
            "error: verify 7 of slow did not finish: 1 of 4 shard(s) not compared (not a "
            "divergence; run it again)\n");
  EXPECT_NE(slow.out.find("unknown     r0,r1  -          -       did not finish: task failed"),
            std::string::npos)
      << slow.out;
  auto slow_json = Ctl({"verify", "status", "7", "--output", "json"});
  EXPECT_EQ(slow_json.exit_code, 3);
  auto j = nlohmann::json::parse(slow_json.out);
  EXPECT_EQ(j["state"], "did_not_finish");
  EXPECT_EQ(j["id"], 7);  // a number, not proto3 JSON's string
  EXPECT_EQ(nlohmann::json::parse(slow_json.err)["error"]["exit_code"], 3);
  auto list = Ctl({"verify", "status"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("7   slow   did_not_finish  4/4      0          1"), std::string::npos)
      << list.out;
  auto missing = Ctl({"verify", "--index", "missing"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "error: index: unknown index 'missing'\n");
  auto unknown = Ctl({"verify", "status", "9"});
  EXPECT_EQ(unknown.exit_code, 1);
}

TEST_F(CtlOnline, ClusterInitSendsTheFileOnce) {
  const std::string path = ::testing::TempDir() + "/fleet_ctl_test.yaml";
  const std::string yaml = "groups:\n  - id: g0\n    nodes: []\n";
  std::ofstream(path) << yaml;
  auto r = Ctl({"cluster", "init", "--file", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("at epoch 1"), std::string::npos);
  EXPECT_EQ(service_.Fleet(), std::make_pair(yaml, path));
  auto again = Ctl({"cluster", "init", "--file", path});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.err, "error: cluster already initialised\n");
  auto nofile = Ctl({"cluster", "init", "--file", path + ".missing"});
  EXPECT_EQ(nofile.exit_code, 2);
  EXPECT_EQ(nofile.ErrLines(), 1);
}

TEST_F(CtlOnline, UnimplementedCallsFailWithExitOne) {
  auto r = Ctl({"nodes", "list"});  // the scripted server does not implement ListNodes
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.ErrLines(), 1);
  EXPECT_NE(r.err.find("does not implement"), std::string::npos) << r.err;
}

TEST_F(CtlOnline, CoordinatorListUsesTheFirstThatAnswersForEveryService) {
  // The first entry does not answer; the scripted coordinator (second) leads.
  const std::string list = UnusedLoopbackAddress() + ", " + address_;
  auto status = RunCtl({"status", "--coordinator", list, "--timeout", "5s"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("coordinator: " + address_), std::string::npos) << status.out;
  // AntiEntropy and Reshard are other services on the same address: the scripted
  // server does not implement them, so reaching it shows as UNIMPLEMENTED naming
  // the leader (an unresolved list would be unreachable, exit 3).
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"anti-entropy", "status"}, {"reshard", "status", "--index", "x"}}) {
    auto full = args;
    full.insert(full.end(), {"--coordinator", list, "--timeout", "5s"});
    auto r = RunCtl(full);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("coordinator " + address_ + " does not implement"), std::string::npos)
        << r.err;
  }
}

TEST(CtlOffline, UnreachableCoordinatorExitsOneNamingIt) {
  const std::string target = UnusedLoopbackAddress();
  for (const auto& args : std::vector<std::vector<std::string>>{{"status"},
                                                                {"nodes", "list"},
                                                                {"index", "list"},
                                                                {"plan", "list"},
                                                                {"verify", "--index", "x"}}) {
    auto full = args;
    full.insert(full.end(), {"--coordinator", target, "--timeout", "5s"});
    auto r = RunCtl(full);
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_EQ(r.ErrLines(), 1) << r.err;
    EXPECT_EQ(r.err.rfind("error: coordinator " + target + " unavailable", 0), 0u) << r.err;
  }
  auto j = RunCtl({"check", "--coordinator", target, "--timeout", "5s", "--output", "json"});
  EXPECT_EQ(j.exit_code, 3) << j.err;
  EXPECT_EQ(j.out, "");
  auto err = nlohmann::json::parse(j.err);
  EXPECT_EQ(err["error"]["code"], "UNAVAILABLE");
  EXPECT_EQ(err["error"]["exit_code"], 3);
}

}  // namespace
}  // namespace miroir
