// `miroir-ctl verify` as a tracked operation (issue 22 item 4) and the CLI's
// shape (item 2) against a real fleet: real redis-server nodes, the real
// coordinator and workers, the real miroir-ctl.
//
// Verify: a healthy index ends `done` with no divergent shard (exit 0); a
// document put on one replica only (through the worker's store adapter, behind
// the write path's back) makes exactly that shard divergent (exit 1); workers
// frozen with SIGSTOP past the operation's --max-duration end it
// `did_not_finish` (exit 3; divergent stays 0: nothing is known about those
// shards); a verify whose tasks are held by a worker that is then killed
// RESUMES on the other worker once the lease lapses and ends `done`; a verify
// running across a coordinator restart resumes (its tasks are persisted).
//
// Before this change `verify` was one call bounded by the CLI's 10 s timeout:
// `verify status` did not exist (exit 2, "unknown command"), `--wait` was not a
// flag, and a coordinator restart dropped every VERIFY task.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "harness/fleet.h"
#include "harness/temp_dir.h"
#include "worker/stores/redis_store.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

FleetOptions Options() {
  FleetOptions opts;
  opts.group_sizes = {2, 2};
  opts.indexes = {{"products", 8, 1}};
  opts.workers = 2;
  return opts;
}

nlohmann::json Json(const RunResult& r) {
  return nlohmann::json::parse(r.stdout_text, nullptr, /*allow_exceptions=*/false);
}

// Starts a verify through the CLI; returns its id (0 on failure).
uint64_t StartVerify(Fleet& f, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"verify", "--index", "products", "--output", "json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = f.Ctl(args);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return 0;
  EXPECT_EQ(r->exit_code, 0) << r->stderr_text;
  auto j = Json(*r);
  EXPECT_TRUE(j.is_object() && j.contains("id")) << r->stdout_text;
  if (!j.is_object() || !j.contains("id")) return 0;
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["total"], 8);
  EXPECT_TRUE(j["id"].is_number()) << r->stdout_text;  // ids are numbers in every JSON
  return j["id"].get<uint64_t>();
}

struct Status {
  int exit_code = -1;
  nlohmann::json op;
  std::string err;
};

Status VerifyStatus(Fleet& f, uint64_t id) {
  Status s;
  auto r = f.Ctl({"verify", "status", std::to_string(id), "--output", "json"});
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return s;
  s.exit_code = r->exit_code;
  s.op = Json(*r);
  s.err = r->stderr_text;
  return s;
}

// Polls `verify status ID` until the operation ends (bounded).
Status WaitEnded(Fleet& f, uint64_t id, absl::Duration timeout = absl::Seconds(60)) {
  const absl::Time until = absl::Now() + timeout;
  Status s;
  while (absl::Now() < until) {
    s = VerifyStatus(f, id);
    if (s.op.is_object() && s.op.value("state", "") != "running") return s;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ADD_FAILURE() << "verify " << id << " did not end: " << s.op.dump();
  return s;
}

// One document on every owner of `shard` (consistent), or on the first only.
void PutDoc(Fleet& f, uint32_t shard, const std::string& pk, bool every_owner) {
  pb::GetIndexRequest req;
  req.set_name("products");
  pb::GetIndexResponse idx;
  grpc::ClientContext ctx;
  ASSERT_TRUE(f.coord().GetIndex(&ctx, req, &idx).ok());
  auto st = f.Status();
  ASSERT_TRUE(st.ok());
  const pb::GenerationRoute* live = nullptr;
  for (const auto& g : idx.routes()) {
    if (g.generation() == idx.index().live_generation()) live = &g;
  }
  ASSERT_NE(live, nullptr);
  std::vector<std::string> owners;
  for (const auto& o : live->routes(static_cast<int>(shard)).owners()) {
    for (const auto& n : o.nodes()) owners.push_back(n);
  }
  ASSERT_GE(owners.size(), 2u);
  if (!every_owner) owners.resize(1);
  // One version on every owner (the digest covers versions).
  const uint64_t hlc = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now())) << 16;
  for (const auto& n : owners) {
    StoreOptions so;
    so.op_timeout_ms = 2000;
    so.connect_timeout_ms = 1000;
    auto store = RedisStore::Create(f.redis(n).address(), so);
    ASSERT_TRUE(store.ok()) << store.status();
    auto r = (*store)->Apply(ShardKey{"products", live->generation(), shard}, st->epoch(),
                             {Mutation{pk, Version{hlc, 7}, false, "{\"v\":1}", 0}});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ((*r)[0].outcome, ApplyOutcome::kApplied);
  }
}

TEST(CtlVerify, HealthyIsDoneCleanAndOneReplicaOnlyDocIsDivergent) {
  TempDir tmp("ctl_verify");
  auto fleet = Fleet::Start(tmp.path(), Options());
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  PutDoc(f, 2, "a:1", /*every_owner=*/true);
  PutDoc(f, 5, "a:2", /*every_owner=*/true);

  // Healthy: started at once, then followed to `done`, every shard consistent.
  const uint64_t clean = StartVerify(f);
  ASSERT_NE(clean, 0u);
  Status done = WaitEnded(f, clean);
  EXPECT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(done.op["state"], "done") << done.op.dump();
  EXPECT_EQ(done.op["divergent"], 0);
  EXPECT_EQ(done.op["unfinished"], 0);
  EXPECT_EQ(done.op["done"], 8);
  ASSERT_EQ(done.op["shards"].size(), 8u);
  for (const auto& v : done.op["shards"]) {
    EXPECT_EQ(v["finished"], true);
    EXPECT_EQ(v["consistent"], true) << v.dump();
  }
  // --wait: the old blocking behaviour, exit 0 and the summary.
  auto waited = f.Ctl({"verify", "--index", "products", "--wait"});
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(waited->exit_code, 0) << waited->stderr_text;
  EXPECT_NE(waited->stdout_text.find(": done, 8/8 shards settled, 0 divergent"), std::string::npos)
      << waited->stdout_text;

  // One replica only: shard 3 diverges, and only it.
  PutDoc(f, 3, "b:1", /*every_owner=*/false);
  const uint64_t bad = StartVerify(f);
  ASSERT_NE(bad, 0u);
  Status divergent = WaitEnded(f, bad);
  EXPECT_EQ(divergent.exit_code, 1) << divergent.err;
  EXPECT_EQ(divergent.op["state"], "done") << divergent.op.dump();
  EXPECT_EQ(divergent.op["divergent"], 1);
  EXPECT_EQ(divergent.op["unfinished"], 0);
  for (const auto& v : divergent.op["shards"]) {
    EXPECT_EQ(v["finished"], true);
    EXPECT_EQ(v["consistent"], v["shard"] != 3) << v.dump();
  }
  EXPECT_NE(divergent.err.find("index products: 1 divergent shard(s): 3"), std::string::npos)
      << divergent.err;
  auto waited_bad = f.Ctl({"verify", "--index", "products", "--wait"});
  ASSERT_TRUE(waited_bad.ok());
  EXPECT_EQ(waited_bad->exit_code, 1) << waited_bad->stderr_text;

  // `verify status` lists both, newest first.
  auto list = f.Ctl({"verify", "status", "--output", "json"});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->exit_code, 0) << list->stderr_text;
  auto ops = Json(*list);
  ASSERT_TRUE(ops.is_array()) << list->stdout_text;
  ASSERT_GE(ops.size(), 4u);
  EXPECT_GT(ops[0]["id"].get<uint64_t>(), ops[1]["id"].get<uint64_t>());

  // Bad input: exact codes, nothing started.
  auto unknown = f.Ctl({"verify", "--index", "nope", "--output", "json"});
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->exit_code, 1);
  EXPECT_NE(unknown->stderr_text.find("\"code\":\"NOT_FOUND\""), std::string::npos)
      << unknown->stderr_text;
  auto no_such = f.Ctl({"verify", "status", "999999"});
  ASSERT_TRUE(no_such.ok());
  EXPECT_EQ(no_such->exit_code, 1);
  EXPECT_NE(no_such->stderr_text.find("unknown verify operation 999999"), std::string::npos);
  auto bad_duration = f.Ctl({"verify", "--index", "products", "--max-duration", "-5s"});
  ASSERT_TRUE(bad_duration.ok());
  EXPECT_EQ(bad_duration->exit_code, 2) << bad_duration->stderr_text;
  auto after = f.Ctl({"verify", "status", "--output", "json"});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Json(*after).size(), ops.size());
}

// Workers frozen (SIGSTOP: still registered, answering nothing) past the
// operation's --max-duration: it ends did_not_finish, which is not divergent.
TEST(CtlVerify, FrozenWorkersEndItDidNotFinishNotDivergent) {
  TempDir tmp("ctl_verify_dnf");
  auto fleet = Fleet::Start(tmp.path(), Options());
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  ASSERT_TRUE(f.worker(0)->Stop().ok());
  ASSERT_TRUE(f.worker(1)->Stop().ok());
  const uint64_t id = StartVerify(f, {"--max-duration", "1s"});
  ASSERT_NE(id, 0u);
  Status s = WaitEnded(f, id);
  ASSERT_TRUE(f.worker(0)->Cont().ok());
  ASSERT_TRUE(f.worker(1)->Cont().ok());
  EXPECT_EQ(s.exit_code, 3) << s.err;
  EXPECT_EQ(s.op["state"], "did_not_finish") << s.op.dump();
  EXPECT_EQ(s.op["divergent"], 0);
  EXPECT_EQ(s.op["unfinished"], 8);
  for (const auto& v : s.op["shards"]) {
    EXPECT_EQ(v["finished"], false);
    EXPECT_NE(v["error"].get<std::string>().find("timeout passed"), std::string::npos) << v.dump();
  }
  EXPECT_NE(s.err.find("did not finish: 8 of 8 shard(s) not compared (not a divergence"),
            std::string::npos)
      << s.err;
  // Its tasks are gone: a new verify on the thawed workers ends done.
  const uint64_t again = StartVerify(f);
  Status ok = WaitEnded(f, again);
  EXPECT_EQ(ok.op["state"], "done") << ok.op.dump();
  EXPECT_EQ(ok.exit_code, 0);
}

// A worker holding verify tasks is frozen, then killed: its leases lapse
// (worker_lease_ttl 2 s) and the other worker finishes them: the operation
// resumes and ends done with every shard compared.
TEST(CtlVerify, KillingTheWorkerHoldingItsTasksResumesOnTheOther) {
  TempDir tmp("ctl_verify_kill");
  auto fleet = Fleet::Start(tmp.path(), Options());
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  ASSERT_TRUE(f.worker(0)->Stop().ok());
  const uint64_t id = StartVerify(f);
  ASSERT_NE(id, 0u);
  // Forced state: some shards are held by the frozen worker, so the operation
  // stays running with fewer than 8 settled.
  absl::SleepFor(absl::Seconds(1));
  Status held = VerifyStatus(f, id);
  ASSERT_EQ(held.op["state"], "running") << held.op.dump();
  ASSERT_LT(held.op["done"].get<int>(), 8) << held.op.dump();
  ASSERT_TRUE(f.KillWorker(0).ok());
  Status s = WaitEnded(f, id);
  EXPECT_EQ(s.op["state"], "done") << s.op.dump();
  EXPECT_EQ(s.op["unfinished"], 0);
  EXPECT_EQ(s.op["divergent"], 0);
  EXPECT_EQ(s.exit_code, 0) << s.err;
}

// The operation is persisted: a coordinator restart while its tasks wait
// (both workers frozen) keeps it, and it resumes and ends done.
TEST(CtlVerify, SurvivesACoordinatorRestart) {
  TempDir tmp("ctl_verify_restart");
  auto fleet = Fleet::Start(tmp.path(), Options());
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  ASSERT_TRUE(f.worker(0)->Stop().ok());
  ASSERT_TRUE(f.worker(1)->Stop().ok());
  const uint64_t id = StartVerify(f);
  ASSERT_NE(id, 0u);
  ASSERT_TRUE(f.RestartCoordinator().ok());
  Status kept = VerifyStatus(f, id);
  ASSERT_EQ(kept.op["state"], "running") << kept.op.dump() << kept.err;
  ASSERT_TRUE(f.worker(0)->Cont().ok());
  ASSERT_TRUE(f.worker(1)->Cont().ok());
  Status s = WaitEnded(f, id);
  EXPECT_EQ(s.op["state"], "done") << s.op.dump();
  EXPECT_EQ(s.op["unfinished"], 0);
  EXPECT_EQ(s.exit_code, 0) << s.err;
}

// Item 2 on the real coordinator: one "plan refused: " prefix (the scripted
// server of tests/ctl could hide a doubled one), `index alias set|remove`, the
// `--name` alias of `--index`, `plan tasks`.
TEST(CtlShape, RefusalsAliasesAndPlanTasksOnTheRealCoordinator) {
  TempDir tmp("ctl_shape");
  auto fleet = Fleet::Start(tmp.path(), Options());
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  // A plan held in prepare: both workers frozen, so its first task waits.
  ASSERT_TRUE(f.worker(0)->Stop().ok());
  ASSERT_TRUE(f.worker(1)->Stop().ok());
  auto plan = f.Ctl({"plan", "remove-node", "--id", "r1", "--output", "json"});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->exit_code, 0) << plan->stderr_text;
  const uint64_t plan_id = Json(*plan)["id"].get<uint64_t>();
  // A second plan on the same node is refused by a gate: the prefix once.
  auto again = f.Ctl({"plan", "remove-node", "--id", "r1"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->exit_code, 1) << again->stderr_text;
  EXPECT_EQ(again->stderr_text.rfind("error: plan refused: ", 0), 0u) << again->stderr_text;
  EXPECT_EQ(again->stderr_text.find("plan refused: plan refused"), std::string::npos)
      << again->stderr_text;

  // plan tasks: the task each move waits for, as the coordinator sees it.
  nlohmann::json tasks;
  for (int i = 0; i < 100; ++i) {
    auto t = f.Ctl({"plan", "tasks", std::to_string(plan_id), "--output", "json"});
    ASSERT_TRUE(t.ok());
    ASSERT_EQ(t->exit_code, 0) << t->stderr_text;
    tasks = Json(*t);
    if (tasks.is_array() && !tasks.empty()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(tasks.is_array() && !tasks.empty()) << tasks.dump();
  auto shown = f.Ctl({"plan", "show", "--id", std::to_string(plan_id), "--output", "json"});
  ASSERT_TRUE(shown.ok());
  ASSERT_EQ(shown->exit_code, 0) << shown->stderr_text;
  auto p = Json(*shown);
  std::set<uint64_t> moves;
  for (const auto& m : p["moves"]) moves.insert(m["id"].get<uint64_t>());
  for (const auto& t : tasks) {
    EXPECT_TRUE(moves.count(t["move_id"].get<uint64_t>())) << t.dump();
    EXPECT_EQ(t["kind"], "prepare") << t.dump();
    EXPECT_TRUE(t["state"] == "pending" || t["state"] == "leased") << t.dump();
    EXPECT_TRUE(t.contains("attempts") && t.contains("worker") && t.contains("last_error"));
  }
  for (const char* field : {"ended_ms", "node_id", "group", "created_ms"}) {
    EXPECT_TRUE(p.contains(field)) << field;
  }
  EXPECT_EQ(p["node_id"], "r1");
  for (const auto& m : p["moves"]) {
    for (const char* field : {"state_since_ms", "task_id", "stall_retries"}) {
      EXPECT_TRUE(m.contains(field)) << field;
    }
  }
  EXPECT_TRUE(p["tasks"].is_array());
  auto table = f.Ctl({"plan", "tasks", std::to_string(plan_id)});
  ASSERT_TRUE(table.ok());
  EXPECT_NE(table->stdout_text.find("prepare"), std::string::npos) << table->stdout_text;
  ASSERT_TRUE(f.worker(0)->Cont().ok());
  ASSERT_TRUE(f.worker(1)->Cont().ok());

  // index alias set|remove; --name still names the index on `index show`.
  auto set = f.Ctl({"index", "alias", "set", "--alias", "catalog", "--index", "products"});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->exit_code, 0) << set->stderr_text;
  for (const char* flag : {"--index", "--name"}) {
    auto show = f.Ctl({"index", "show", flag, "catalog", "--output", "json"});
    ASSERT_TRUE(show.ok());
    EXPECT_EQ(show->exit_code, 0) << flag << show->stderr_text;
    EXPECT_EQ(Json(*show)["index"]["name"], "products") << show->stdout_text;
  }
  auto unknown_index = f.Ctl({"index", "alias", "set", "--alias", "x", "--index", "nope"});
  ASSERT_TRUE(unknown_index.ok());
  EXPECT_EQ(unknown_index->exit_code, 1) << unknown_index->stderr_text;
  auto malformed = f.Ctl({"index", "alias", "set", "--alias", "Bad Alias", "--index", "products"});
  ASSERT_TRUE(malformed.ok());
  EXPECT_EQ(malformed->exit_code, 2) << malformed->stderr_text;
  auto removed = f.Ctl({"index", "alias", "remove", "--alias", "catalog"});
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->exit_code, 0) << removed->stderr_text;
  auto gone = f.Ctl({"index", "show", "--index", "catalog"});
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->exit_code, 1) << gone->stderr_text;
  auto twice = f.Ctl({"index", "alias", "remove", "--alias", "catalog", "--output", "json"});
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->exit_code, 1);
  EXPECT_NE(twice->stderr_text.find("\"code\":\"NOT_FOUND\""), std::string::npos)
      << twice->stderr_text;
  auto list = f.Ctl({"index", "list", "--output", "json"});
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(Json(*list)[0]["aliases"].empty()) << list->stdout_text;
}

}  // namespace
}  // namespace miroir::testing
