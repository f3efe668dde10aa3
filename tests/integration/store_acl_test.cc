// Store credentials end to end (DESIGN §13, issue 20 items 4 and 5):
//  - a fleet whose redis-server nodes run with the `default` user off and an ACL
//    user (harness FleetOptions::store_acl): workers authenticate with
//    store.username / store.password_file, a node-adding plan finishes under
//    writes, `miroir-ctl check` reads every node's durability settings through a
//    worker, the writer's check holds, and a client without credentials is
//    refused by the nodes themselves;
//  - no secret in the open: every file the run left (logs of the coordinator,
//    the workers and the nodes, configs) and every output of the CLI is searched
//    for the password, and a hit fails the test;
//  - a node reached through a TLS tunnel (stunnel on loopback, one per side, as
//    docs/security.md shows): the adapter writes and reads through the tunnel's
//    local endpoint, and the node's side of the tunnel speaks only TLS.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "harness/move_scenario.h"
#include "harness/ports.h"
#include "harness/process.h"
#include "harness/redis_node.h"
#include "harness/temp_dir.h"
#include "harness/test_pki.h"
#include "worker/stores/redis_store.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;
using ::testing::HasSubstr;

// Files under `dir` (recursively) whose content holds `secret`, except `skip`
// (the secret's own file).
std::vector<std::string> FilesHolding(const std::string& dir, const std::string& secret,
                                      const std::string& skip) {
  std::vector<std::string> hits;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() == skip) continue;
    if (ReadFileOrEmpty(e.path().string()).find(secret) != std::string::npos)
      hits.push_back(e.path().string());
  }
  return hits;
}

// PING without credentials, straight to the node: its reply.
std::string UnauthenticatedPing(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return "cannot connect";
  }
  auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
  std::string out = r == nullptr ? c->errstr : std::string(r->str ? r->str : "", r->len);
  if (r) freeReplyObject(r);
  redisFree(c);
  return out;
}

TEST(StoreAcl, FleetOnAclNodesMovesDataAndNoSecretLeaks) {
  TempDir tmp("store_acl");
  ScenarioOptions so;
  so.fleet.group_sizes = {2};
  so.fleet.indexes = {{"products", 4, 1}};
  so.fleet.store_acl = true;
  so.keys = 600;
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  const std::string password = f.store_password();
  ASSERT_GE(password.size(), 16u);
  // The nodes refuse a client that does not authenticate.
  EXPECT_THAT(UnauthenticatedPing(f.redis("r0").port()), HasSubstr("NOAUTH"));

  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  auto plan = (*sc)->Plan(AddNodeRequest("r9", "g0", *addr));
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(90));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  EXPECT_THAT(UnauthenticatedPing(f.redis("r9").port()), HasSubstr("NOAUTH"));

  // Everything an operator runs, kept for the secret search below.
  std::vector<std::string> outputs;
  auto check = f.Ctl({"check", "--output", "json"});
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->exit_code, 0) << check->stdout_text << check->stderr_text;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"status"}, std::vector<std::string>{"check"},
        std::vector<std::string>{"config", "show"},
        std::vector<std::string>{"plan", "show", absl::StrCat(plan->id())},
        std::vector<std::string>{"nodes", "list", "--output", "json"}}) {
    auto r = f.Ctl(args);
    ASSERT_TRUE(r.ok());
    outputs.push_back(r->stdout_text + r->stderr_text);
  }
  outputs.push_back(check->stdout_text + check->stderr_text);
  auto help = RunToCompletion(MIROIR_WORKER_BIN, {"--help"}, tmp.path());
  ASSERT_TRUE(help.ok());
  outputs.push_back(help->stdout_text + help->stderr_text);

  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();

  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_EQ(outputs[i].find(password), std::string::npos) << "output " << i << " shows it";
  }
  // store.password is the secret's own file; users.acl holds only its SHA-256.
  EXPECT_THAT(FilesHolding(tmp.path(), password, "store.password"), ::testing::IsEmpty());
}

// stunnel in front of a node (TLS server side) and on the worker's machine
// (plaintext loopback endpoint, TLS client side verifying the node's
// certificate): the adapter reaches the node only through the tunnel.
TEST(StoreAcl, NodeThroughALoopbackTlsTunnel) {
  TempDir tmp("store_tunnel");
  auto node = RedisNode::Start(tmp.Subdir("redis"), 0, RedisAcl{"miroir", "tunnel-pw-19d7"});
  ASSERT_TRUE(node.ok()) << node.status();
  auto pki = TestPki::Create(tmp.path());
  ASSERT_TRUE(pki.ok()) << pki.status();
  auto cert = pki->Issue("redis-node");
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto tls_port = PickFreePort();
  auto local_port = PickFreePort();
  ASSERT_TRUE(tls_port.ok() && local_port.ok());
  // The node's side: TLS on tls_port, plaintext to redis on loopback.
  const std::string server_conf = tmp.File("stunnel-node.conf");
  std::ofstream(server_conf) << "foreground = yes\npid =\n[redis]\naccept = 127.0.0.1:" << *tls_port
                             << "\nconnect = 127.0.0.1:" << (*node)->port()
                             << "\ncert = " << cert->cert << "\nkey = " << cert->key << "\n";
  // The worker's side: plaintext on local_port (the address the fleet names),
  // TLS to the node, its certificate verified against the CA.
  const std::string client_conf = tmp.File("stunnel-worker.conf");
  std::ofstream(client_conf)
      << "foreground = yes\npid =\n[redis]\nclient = yes\naccept = 127.0.0.1:" << *local_port
      << "\nconnect = 127.0.0.1:" << *tls_port << "\nCAfile = " << pki->ca()
      << "\nverifyChain = yes\n"
      << "checkHost = localhost\n";
  ProcessOptions so;
  so.binary = "stunnel4";
  so.args = {server_conf};
  so.log_path = tmp.File("stunnel-node.log");
  auto server = Process::Start(so);
  ASSERT_TRUE(server.ok()) << server.status();
  ProcessOptions co = so;
  co.args = {client_conf};
  co.log_path = tmp.File("stunnel-worker.log");
  auto client = Process::Start(co);
  ASSERT_TRUE(client.ok()) << client.status();

  StoreOptions opts;
  opts.username = "miroir";
  opts.password = "tunnel-pw-19d7";
  auto store = RedisStore::Create(LoopbackAddress(*local_port), opts);
  ASSERT_TRUE(store.ok()) << store.status();
  ShardKey shard{"products", 1, 0};
  absl::Status applied = absl::UnavailableError("not tried");
  for (int i = 0; i < 100 && !applied.ok(); ++i) {  // stunnel binds within ms
    applied = (*store)->Apply(shard, 1, {Mutation{"a", Version{100, 7}, false, "{}", 0}}).status();
    if (!applied.ok()) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(applied.ok()) << applied << "\n" << ReadFileOrEmpty(tmp.File("stunnel-worker.log"));
  auto d = (*store)->Get(shard, 1, "a");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->version, (Version{100, 7}));
  // What went through the tunnel is on the node.
  auto direct = (*node)->Command({"DBSIZE"});
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_NE(*direct, "0");
  // The node's public side is TLS only: a plaintext client gets no answer.
  StoreOptions plain = opts;
  plain.op_timeout_ms = 500;
  plain.connect_timeout_ms = 500;
  auto raw = RedisStore::Create(LoopbackAddress(*tls_port), plain);
  ASSERT_TRUE(raw.ok());
  EXPECT_FALSE((*raw)->Get(shard, 1, "a").ok());
}

}  // namespace
}  // namespace miroir::testing
