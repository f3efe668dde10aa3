// `miroir-ctl check` on a real fleet (issue 22 item 1): healthy at start, then
// each injected fault is reported with exit 1 — a store switched to
// `appendfsync everysec` with CONFIG SET on the real redis-server, a store
// killed, a node marked failed — and an add-node whose address does not answer
// is refused at plan creation with nothing changed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "harness/fleet.h"
#include "harness/temp_dir.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

// A loopback port nothing listens on (bound then closed).
std::string DeadAddress() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

struct Check {
  int exit_code = -1;
  nlohmann::json json;
  std::string table;
};

Check RunCheck(Fleet& f) {
  Check c;
  auto j = f.Ctl({"check", "--output", "json"});
  EXPECT_TRUE(j.ok()) << j.status();
  if (!j.ok()) return c;
  c.exit_code = j->exit_code;
  c.json = nlohmann::json::parse(j->stdout_text, nullptr, /*allow_exceptions=*/false);
  auto t = f.Ctl({"check"});
  if (t.ok()) c.table = t->stdout_text;
  return c;
}

bool HasError(const Check& c, const std::string& check, const std::string& subject) {
  if (!c.json.contains("findings")) return false;
  for (const auto& f : c.json["findings"]) {
    if (f["severity"] == "error" && f["check"] == check && f["subject"] == subject) return true;
  }
  return false;
}

// Runs check until `done` holds (bounded: workers report every node every 3 s).
Check WaitForCheck(Fleet& f, const std::function<bool(const Check&)>& done) {
  Check c;
  for (int i = 0; i < 60; ++i) {
    c = RunCheck(f);
    if (done(c)) return c;
    absl::SleepFor(absl::Milliseconds(500));
  }
  return c;
}

TEST(ClusterCheck, ReportsAHealthyFleetThenEachInjectedFault) {
  TempDir tmp("cluster_check");
  FleetOptions opts;
  opts.group_sizes = {2, 2};
  opts.indexes = {{"products", 8, 1}};
  auto fleet = Fleet::Start(tmp.path(), opts);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  // Healthy: every node reachable and durable, as CONFIG GET through a worker read it.
  Check healthy = WaitForCheck(f, [](const Check& c) { return c.exit_code == 0; });
  ASSERT_EQ(healthy.exit_code, 0) << healthy.json.dump() << healthy.table;
  EXPECT_EQ(healthy.json["healthy"], true);
  ASSERT_EQ(healthy.json["nodes"].size(), 4u);
  for (const auto& n : healthy.json["nodes"]) {
    EXPECT_EQ(n["reachable"], "yes");
    EXPECT_EQ(n["store_config"]["appendonly"], "yes");
    EXPECT_EQ(n["store_config"]["appendfsync"], "always");
    EXPECT_EQ(n["store_config"]["maxmemory-policy"], "noeviction");
  }
  EXPECT_NE(healthy.table.find("\nhealthy\n"), std::string::npos) << healthy.table;

  // Fault 1: a store that no longer fsyncs every write.
  ASSERT_TRUE(f.redis("r1").Command({"CONFIG", "SET", "appendfsync", "everysec"}).ok());
  Check lax = WaitForCheck(f, [](const Check& c) { return HasError(c, "store_config", "r1"); });
  EXPECT_EQ(lax.exit_code, 1);
  EXPECT_TRUE(HasError(lax, "store_config", "r1")) << lax.json.dump();
  EXPECT_NE(lax.table.find("appendfsync is 'everysec', must be 'always'"), std::string::npos)
      << lax.table;
  ASSERT_TRUE(f.redis("r1").Command({"CONFIG", "SET", "appendfsync", "always"}).ok());
  Check fixed = WaitForCheck(f, [](const Check& c) { return c.exit_code == 0; });
  EXPECT_EQ(fixed.exit_code, 0) << fixed.json.dump();

  // An add-node whose address does not answer: refused at creation, nothing changed.
  auto before = f.Status();
  ASSERT_TRUE(before.ok()) << before.status();
  const std::string dead = DeadAddress();
  auto add = f.Ctl({"plan", "add-node", "--id", "r9", "--group", "g0", "--address", dead});
  ASSERT_TRUE(add.ok()) << add.status();
  EXPECT_EQ(add->exit_code, 1) << add->stderr_text;
  EXPECT_EQ(add->stderr_text.rfind(absl::StrCat("error: plan refused: node r9: address ", dead,
                                                " does not answer (connect: "),
                                   0),
            0u)
      << add->stderr_text;
  auto dry =
      f.Ctl({"plan", "add-node", "--id", "r9", "--group", "g0", "--address", dead, "--dry-run"});
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry->exit_code, 1) << dry->stdout_text;
  auto after = f.Status();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->epoch(), before->epoch());
  EXPECT_EQ(after->nodes_size(), before->nodes_size());
  EXPECT_EQ(after->plans_size(), 0);

  // Fault 2: a store killed.
  ASSERT_TRUE(f.redis("r3").Kill().ok());
  Check down = WaitForCheck(f, [](const Check& c) { return HasError(c, "node_reachable", "r3"); });
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_TRUE(HasError(down, "node_reachable", "r3")) << down.json.dump();

  // Fault 3: that node marked failed: one finding naming the way back, its
  // store no longer judged.
  auto failed = f.Ctl({"nodes", "fail", "--id", "r3"});
  ASSERT_TRUE(failed.ok());
  ASSERT_EQ(failed->exit_code, 0) << failed->stderr_text;
  Check marked = WaitForCheck(f, [](const Check& c) {
    return HasError(c, "node_failed", "r3") && !HasError(c, "node_reachable", "r3");
  });
  EXPECT_EQ(marked.exit_code, 1);
  EXPECT_TRUE(HasError(marked, "node_failed", "r3")) << marked.json.dump();
  EXPECT_FALSE(HasError(marked, "node_reachable", "r3")) << marked.json.dump();
  EXPECT_NE(marked.table.find("plan restore --id r3"), std::string::npos) << marked.table;
}

}  // namespace
}  // namespace miroir::testing
