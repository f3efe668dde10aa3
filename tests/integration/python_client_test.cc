// The Python client (client/python/miroir) against a real fleet: the example
// of docs/clients.md (client/python/examples/example.py) writes, deletes and
// reads with tokens through two workers; its writes are then read back through
// DataPlane.Get (with each key's token) and checked on the nodes (CheckPromise).
// Runs Debian's /usr/bin/python3 with python3-grpcio and the stubs generated
// at build time (MIROIR_PYTHON_DIR).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "harness/fleet.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"

namespace miroir::testing {
namespace {

TEST(PythonClient, ExampleWritesAreReadBackAndHeldByEveryOwner) {
  TempDir tmp("pyclient");
  FleetOptions fo;
  fo.group_sizes = {2, 2};
  fo.indexes = {{"products", 8, 1}};
  fo.workers = 2;
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  auto run = RunToCompletion(
      "/usr/bin/env",
      {std::string("PYTHONPATH=") + MIROIR_PYTHON_DIR, "/usr/bin/python3",
       std::string(MIROIR_SOURCE_DIR) + "/client/python/examples/example.py", "--workers",
       absl::StrJoin(f.worker_addresses(), ","), "--index", "products", "--keys", "40"},
      tmp.path(), absl::Seconds(120));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << run->stderr_text << run->stdout_text;

  std::map<std::string, KeyRecord> records;
  int deletes = 0;
  for (absl::string_view line : absl::StrSplit(run->stdout_text, '\n', absl::SkipEmpty())) {
    auto j = nlohmann::json::parse(line);
    KeyRecord& r = records[j["pk"].get<std::string>()];
    r.acked = true;
    r.deleted = j["deleted"].get<bool>();
    r.body = j["body"].get<std::string>();
    r.version = j["version"].get<uint64_t>();
    r.writer = j["writer"].get<uint64_t>();
    r.acked_ops = 1;
    deletes += r.deleted;
  }
  ASSERT_EQ(records.size(), 40u) << run->stdout_text;
  EXPECT_EQ(deletes, 10);

  // Read back through the API of the other worker, with each key's token.
  for (const auto& [pk, r] : records) {
    v1::GetRequest req;
    req.set_index("products");
    req.set_pk(pk);
    req.set_after_version(r.version);
    v1::GetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::Status s = f.dataplane(1).Get(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << pk << ": " << s.error_message();
    EXPECT_EQ(resp.found(), !r.deleted) << pk;
    EXPECT_EQ(resp.document().version(), r.version) << pk;
    if (!r.deleted) {
      EXPECT_EQ(resp.document().body(), r.body) << pk;
    }
  }
  auto report = CheckPromise(records, f.CheckOptionsFor("products"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_EQ(report->keys_checked, 40u);
}

}  // namespace
}  // namespace miroir::testing
