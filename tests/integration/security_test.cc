// DESIGN §13 end to end on real processes: a fleet over mTLS with roles (the
// coordinator and the workers with a throw-away CA's certificates, the workers
// registering by their certificate subject), the data promise through it, and
// every refusal: no client certificate, plaintext to a TLS server, an untrusted
// certificate, no or a wrong token, a role calling outside its methods, a token
// removed by SIGHUP. Refused calls change nothing (plans compared before/after).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/auth.h"
#include "common/client_channel.h"
#include "common/grpc_server.h"
#include "harness/fleet.h"
#include "harness/temp_dir.h"
#include "harness/test_pki.h"
#include "harness/test_writer.h"

namespace miroir::testing {
namespace {

using ::testing::HasSubstr;
namespace pb = miroir::v1;

constexpr char kTestToken[] = "tok-test-3f9a";      // admin on the coordinator, client on workers
constexpr char kViewerToken[] = "tok-viewer-77c1";  // viewer on the coordinator
constexpr char kClientToken[] = "tok-client-0b2e";  // client on the coordinator (wrong role)

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

std::string TokenLine(const std::string& name, const std::string& token, const std::string& role) {
  return absl::StrCat("  - {name: ", name, ", sha256: ", Sha256Hex(token), ", role: ", role, "}\n");
}

class SecureFleet : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::Create(tmp_.path());
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::make_unique<TestPki>(*pki);
    auto node = pki_->Issue("miroir-node");  // coordinator and workers
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *node;
    auto test_client = pki_->Issue("test-client");  // not in any subjects list
    ASSERT_TRUE(test_client.ok()) << test_client.status();
    client_ = *test_client;
    coord_tokens_ = tmp_.File("coordinator-tokens.yaml");
    WriteFile(coord_tokens_, CoordinatorTokens(/*with_viewer=*/true));
    const std::string worker_tokens = tmp_.File("worker-tokens.yaml");
    WriteFile(worker_tokens, absl::StrCat("tokens:\n", TokenLine("test", kTestToken, "client")));
    tls_ = {client_.cert, client_.key, pki_->ca()};
    ASSERT_TRUE(SetClientSecurity({tls_, kTestToken, {}}).ok());

    FleetOptions fo;
    fo.group_sizes = {2, 1};
    fo.indexes = {{"products", 8, 1}};
    fo.proxied_nodes = {"r0"};  // the audit test holds a plan's target with it
    fo.coordinator_flags = {"--tls-cert", node_.cert, "--tls-key",     node_.key,
                            "--tls-ca",   pki_->ca(), "--tokens-file", coord_tokens_};
    fo.worker_flags = {"--tls-cert", node_.cert, "--tls-key",     node_.key,
                       "--tls-ca",   pki_->ca(), "--tokens-file", worker_tokens};
    auto fleet = Fleet::Start(tmp_.path(), fo);
    ASSERT_TRUE(fleet.ok()) << fleet.status();
    fleet_ = std::move(*fleet);
  }
  void TearDown() override { ASSERT_TRUE(SetClientSecurity({}).ok()); }

  static std::string CoordinatorTokens(bool with_viewer) {
    return absl::StrCat("tokens:\n", TokenLine("ops-test", kTestToken, "admin"),
                        with_viewer ? TokenLine("dash", kViewerToken, "viewer") : "",
                        TokenLine("app", kClientToken, "client"),
                        "subjects:\n  - {subject: \"CN=miroir-node\", role: worker}\n");
  }

  // A Coordinator stub with its own TLS files and token (empty: none).
  std::unique_ptr<pb::Coordinator::Stub> Stub(const TlsFiles& tls, const std::string& token) {
    auto creds = MakeChannelCredentials(tls);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return pb::Coordinator::NewStub(NewClientChannel(fleet_->coordinator_address(), *creds, token));
  }

  grpc::Status GetStatus(pb::Coordinator::Stub& stub) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    pb::GetStatusResponse resp;
    return stub.GetStatus(&ctx, pb::GetStatusRequest(), &resp);
  }

  int PlanCount() {
    grpc::ClientContext ctx;
    pb::ListPlansResponse resp;
    EXPECT_TRUE(fleet_->coord().ListPlans(&ctx, pb::ListPlansRequest(), &resp).ok());
    return resp.plans_size();
  }

  grpc::Status CreateRemoveNodePlan(pb::Coordinator::Stub& stub) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    pb::CreatePlanRequest req;
    req.set_kind(pb::PLAN_REMOVE_NODE);
    req.set_node_id("r1");
    pb::CreatePlanResponse resp;
    return stub.CreatePlan(&ctx, req, &resp);
  }

  std::vector<std::string> CtlTls(bool with_cert) {
    std::vector<std::string> a = {"--tls-ca", pki_->ca()};
    if (with_cert) a.insert(a.end(), {"--tls-cert", client_.cert, "--tls-key", client_.key});
    return a;
  }

  TempDir tmp_{"security"};
  std::unique_ptr<TestPki> pki_;
  CertFiles node_, client_;
  TlsFiles tls_;
  std::string coord_tokens_;
  std::unique_ptr<Fleet> fleet_;
};

TEST_F(SecureFleet, MtlsWithRolesEndToEndLosesNothing) {
  // The workers registered by certificate subject (Fleet::Start waited for them).
  WriterOptions wo = fleet_->WriterOptionsFor("products");
  wo.keys = 100;
  wo.max_ops = 600;
  wo.max_duration = absl::Seconds(20);
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Run().ok());
  EXPECT_GT(writer.stats().acked_puts, 0u);
  EXPECT_EQ(writer.stats().unknown, 0u);
  auto report = CheckPromise(writer.records(), fleet_->CheckOptionsFor("products"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();

  const std::string token_file = tmp_.File("viewer.token");
  WriteFile(token_file, std::string(kViewerToken) + "\n");
  std::vector<std::string> args = CtlTls(true);
  args.insert(args.end(), {"--token-file", token_file, "status"});
  auto ctl = fleet_->Ctl(args);
  ASSERT_TRUE(ctl.ok()) << ctl.status();
  EXPECT_EQ(ctl->exit_code, 0) << ctl->stderr_text;
}

TEST_F(SecureFleet, TransportRefusalsWithoutClientCertPlaintextOrUntrustedCa) {
  const std::string token_file = tmp_.File("admin.token");
  WriteFile(token_file, std::string(kTestToken) + "\n");
  // Client certificate missing where the server requires one.
  std::vector<std::string> args = CtlTls(false);
  args.insert(args.end(), {"--token-file", token_file, "--timeout", "3s", "status"});
  auto ctl = fleet_->Ctl(args);
  ASSERT_TRUE(ctl.ok());
  EXPECT_NE(ctl->exit_code, 0);
  EXPECT_EQ(GetStatus(*Stub({"", "", pki_->ca()}, kTestToken)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // Plaintext to a TLS server.
  EXPECT_EQ(GetStatus(*Stub({}, kTestToken)).error_code(), grpc::StatusCode::UNAVAILABLE);
  ctl = fleet_->Ctl({"--token-file", token_file, "--timeout", "3s", "status"});
  ASSERT_TRUE(ctl.ok());
  EXPECT_NE(ctl->exit_code, 0);
  // A certificate from another CA.
  TempDir other_dir("security-other-ca");
  auto other = TestPki::Create(other_dir.path(), "rogue-ca");
  ASSERT_TRUE(other.ok()) << other.status();
  auto rogue = other->Issue("rogue");
  ASSERT_TRUE(rogue.ok());
  EXPECT_EQ(GetStatus(*Stub({rogue->cert, rogue->key, pki_->ca()}, kTestToken)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // The same call with the right files works: the refusals above were the files.
  EXPECT_TRUE(GetStatus(*Stub(tls_, kTestToken)).ok());
}

TEST_F(SecureFleet, CredentialAndRoleRefusalsChangeNothing) {
  const int plans_before = PlanCount();
  // No token, and the client certificate's subject is in no list.
  grpc::Status s = GetStatus(*Stub(tls_, ""));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  s = CreateRemoveNodePlan(*Stub(tls_, "tok-wrong"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "authorization: unknown bearer token");
  // A viewer can read but not create, pause or abort plans.
  auto viewer = Stub(tls_, kViewerToken);
  EXPECT_TRUE(GetStatus(*viewer).ok());
  s = CreateRemoveNodePlan(*viewer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("dash (role viewer) may not call "
                                           "miroir.v1.Coordinator/CreatePlan"));
  // A client token cannot abort a plan (the plan need not exist: refused first).
  {
    grpc::ClientContext ctx;
    pb::PlanIdRequest req;
    req.set_id(1);
    pb::GetPlanResponse resp;
    s = Stub(tls_, kClientToken)->AbortPlan(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_EQ(PlanCount(), plans_before);
  // The same request with the admin token is accepted: the refusals were the role.
  EXPECT_TRUE(CreateRemoveNodePlan(*Stub(tls_, kTestToken)).ok());
  EXPECT_EQ(PlanCount(), plans_before + 1);
}

TEST_F(SecureFleet, AuditNamesTheCallerOfEveryAcceptedMutationAndNotTheRefusedOnes) {
  auto admin = Stub(tls_, kTestToken);
  // A plan held in prepare (its target r0's traffic held), so pausing it is
  // accepted whatever the moves would have done by then.
  fleet_->node("r0").proxy->Hold();
  pb::CreatePlanResponse created;
  {
    grpc::ClientContext ctx;
    pb::CreatePlanRequest req;
    req.set_kind(pb::PLAN_REMOVE_NODE);
    req.set_node_id("r1");
    grpc::Status s = admin->CreatePlan(&ctx, req, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const uint64_t plan = created.plan().id();
  pb::PlanIdRequest id;
  id.set_id(plan);
  pb::GetPlanRequest get;
  get.set_id(plan);
  // Wait (bounded) for a step the coordinator takes by itself: a move's transition.
  bool moved = false;
  for (int i = 0; i < 200 && !moved; ++i) {
    grpc::ClientContext ctx;
    pb::GetPlanResponse resp;
    ASSERT_TRUE(admin->GetPlan(&ctx, get, &resp).ok());
    for (const pb::Event& e : resp.history()) moved = moved || e.move_id() != 0;
    if (!moved) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(moved) << "no move of plan " << plan << " made a transition in 20 s";
  // The viewer's pause is refused: it must not appear anywhere.
  {
    grpc::ClientContext ctx;
    pb::GetPlanResponse resp;
    EXPECT_EQ(Stub(tls_, kViewerToken)->PausePlan(&ctx, id, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    pb::GetPlanResponse resp;
    ASSERT_TRUE(admin->PausePlan(&ctx, id, &resp).ok());
  }
  // The plan's events: the pause carries its caller; the coordinator's own
  // steps (the moves' transitions) carry none.
  pb::GetPlanResponse shown;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->GetPlan(&ctx, get, &shown).ok());
  }
  int by_admin = 0;
  int own_steps = 0;
  for (const pb::Event& e : shown.history()) {
    EXPECT_NE(e.actor(), "dash") << e.ShortDebugString();
    if (e.actor() == "ops-test") {
      ++by_admin;
      EXPECT_THAT(e.call(), ::testing::AnyOf("Coordinator/CreatePlan", "Coordinator/PausePlan"));
    } else if (e.actor().empty()) {
      ++own_steps;
    }
  }
  EXPECT_GE(by_admin, 2) << "create and pause";
  EXPECT_GE(own_steps, 1) << "the moves' own transitions";
  // status: the newest accepted mutation first, who/what/when.
  pb::GetStatusResponse status;
  {
    grpc::ClientContext ctx;
    pb::GetStatusRequest req;
    req.set_recent_actions(50);
    ASSERT_TRUE(admin->GetStatus(&ctx, req, &status).ok());
  }
  ASSERT_GE(status.recent_actions_size(), 2);
  EXPECT_EQ(status.recent_actions(0).actor(), "ops-test");
  EXPECT_EQ(status.recent_actions(0).call(), "Coordinator/PausePlan");
  EXPECT_EQ(status.recent_actions(0).plan_id(), plan);
  EXPECT_GT(status.recent_actions(0).time_ms(), 0);
  bool create_seen = false;
  for (const pb::Event& a : status.recent_actions()) {
    EXPECT_NE(a.actor(), "dash");
    EXPECT_FALSE(a.actor().empty()) << "audit records always name the caller";
    create_seen = create_seen || a.call() == "Coordinator/CreatePlan";
  }
  EXPECT_TRUE(create_seen);
  // The same through miroir-ctl: plan show and status name the caller.
  const std::string token_file = tmp_.File("admin.token");
  WriteFile(token_file, std::string(kTestToken) + "\n");
  std::vector<std::string> args = CtlTls(true);
  args.insert(args.end(), {"--token-file", token_file, "plan", "show", absl::StrCat(plan)});
  auto ctl = fleet_->Ctl(args);
  ASSERT_TRUE(ctl.ok()) << ctl.status();
  ASSERT_EQ(ctl->exit_code, 0) << ctl->stderr_text;
  EXPECT_THAT(ctl->stdout_text, HasSubstr("by ops-test"));
  args = CtlTls(true);
  args.insert(args.end(), {"--token-file", token_file, "status"});
  ctl = fleet_->Ctl(args);
  ASSERT_TRUE(ctl.ok()) << ctl.status();
  ASSERT_EQ(ctl->exit_code, 0) << ctl->stderr_text;
  EXPECT_THAT(ctl->stdout_text, HasSubstr("recent actions:"));
  EXPECT_THAT(ctl->stdout_text, HasSubstr("Coordinator/PausePlan"));
  // A refused request is not audited: asking for too many records is INVALID_ARGUMENT.
  {
    grpc::ClientContext ctx;
    pb::GetStatusRequest req;
    req.set_recent_actions(1001);
    pb::GetStatusResponse resp;
    grpc::Status s = admin->GetStatus(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), "recent_actions: 1001 is above 1000");
  }
  fleet_->node("r0").proxy->Release();
  {
    grpc::ClientContext ctx;
    pb::GetPlanResponse resp;
    EXPECT_TRUE(admin->AbortPlan(&ctx, id, &resp).ok());
  }
}

TEST_F(SecureFleet, TokenRemovedFromTheFileStopsWorkingAfterSighup) {
  auto viewer = Stub(tls_, kViewerToken);
  ASSERT_TRUE(GetStatus(*viewer).ok());
  WriteFile(coord_tokens_, CoordinatorTokens(/*with_viewer=*/false));
  ASSERT_EQ(kill(fleet_->coordinator()->pid(), SIGHUP), 0);
  grpc::Status s;
  for (int i = 0; i < 50; ++i) {  // the reload runs on a background thread
    s = GetStatus(*viewer);
    if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_TRUE(GetStatus(*Stub(tls_, kTestToken)).ok());  // the others still work
}

TEST(SecurityFlags, NonLoopbackPlaintextAndMalformedTokensFileExit2) {
  TempDir tmp("security-flags");
  auto r = RunToCompletion(MIROIR_COORDINATOR_BIN,
                           {"--listen", "0.0.0.0:0", "--data-dir", tmp.File("data")}, tmp.path());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_THAT(r->stderr_text, HasSubstr("--insecure"));
  r = RunToCompletion(MIROIR_WORKER_BIN, {"--listen", "0.0.0.0:0"}, tmp.path());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_THAT(r->stderr_text, HasSubstr("--insecure"));

  const std::string bad = tmp.File("tokens.yaml");
  WriteFile(bad, "tokens:\n  - {name: a, sha256: nothex, role: admin}\n");
  r = RunToCompletion(
      MIROIR_COORDINATOR_BIN,
      {"--listen", "127.0.0.1:0", "--data-dir", tmp.File("data"), "--tokens-file", bad},
      tmp.path());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_THAT(r->stderr_text, HasSubstr(bad + ":2: tokens[0].sha256"));
}

}  // namespace
}  // namespace miroir::testing
