// Recovery passes are never dropped (DESIGN §4, §9a; issue 16 item 2). A replica
// that missed an acknowledged write is brought up to date by the recovery pass
// its miss caused — with anti-entropy OFF in every test here, so nothing else
// can repair it, and with the default migration.task_retries (5): no test
// configures around the hole. Convergence is checked on the nodes themselves
// (the harness TestWriter's check).
//
//   (a) a new miss is not folded into a pass that is already running and may
//       have passed the key;
//   (b) a pass that fails more than task_retries times is retried until it
//       succeeds;
//   (c) a pass fenced by a cutover runs again at the new epoch on the shard's
//       current owners;
//   (d) misses wait in the worker while no coordinator answers and are reported
//       when one does.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chaos/chaos_util.h"
#include "common/routing.h"
#include "harness/fleet.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"
#include "worker/stores/redis_store.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

using Records = std::map<std::string, KeyRecord>;

// The harness defaults with anti-entropy off: only recovery passes repair.
YAML::Node NoAntiEntropy() {
  YAML::Node c = DefaultCoordinatorConfig();
  c["anti_entropy"]["enabled"] = false;
  return c;
}

// Puts `pks` (one batch) through worker `worker`, each with a unique body and the
// key's last acknowledged version as after_version; records every ack. Returns
// the acks (an error when the stream failed).
absl::StatusOr<std::vector<pb::WriteAck>> Put(Fleet& f, int worker,
                                              const std::vector<std::string>& pks,
                                              const std::string& tag, Records* records) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = f.dataplane(worker).Write(&ctx);
  pb::WriteBatch batch;
  batch.set_batch_id(1);
  std::vector<std::string> bodies;
  for (const auto& pk : pks) {
    pb::WriteItem* item = batch.add_items();
    std::string body = absl::StrCat("{\"key\":\"", pk, "\",\"tag\":\"", tag, "\"}");
    item->mutable_put()->set_index("products");
    item->mutable_put()->set_pk(pk);
    item->mutable_put()->set_body(body);
    item->set_after_version((*records)[pk].version);
    bodies.push_back(std::move(body));
  }
  if (!stream->Write(batch)) return absl::UnavailableError("write stream broke");
  stream->WritesDone();
  pb::WriteAcks acks;
  if (!stream->Read(&acks)) {
    return absl::UnavailableError(absl::StrCat("no acks: ", stream->Finish().error_message()));
  }
  stream->Finish();
  std::vector<pb::WriteAck> out(acks.acks().begin(), acks.acks().end());
  for (size_t i = 0; i < pks.size() && i < out.size(); ++i) {
    KeyRecord& rec = (*records)[pks[i]];
    if (out[i].code() != 0) {
      rec.unknown = true;  // outcome not known: the key is not judged
      continue;
    }
    rec.acked = true;
    rec.deleted = false;
    rec.body = bodies[i];
    rec.version = out[i].version();
    rec.writer = out[i].writer();
    rec.acked_ops += 1;
  }
  return out;
}

// The version `node` stores for `pk` on shard `shard` of the live generation (0:
// absent or unreadable), read from the redis node itself, past any proxy.
uint64_t StoredVersion(Fleet& f, const std::string& node, uint64_t generation, uint32_t shard,
                       const std::string& pk) {
  auto store = RedisStore::Create(f.redis(node).address(), StoreOptions());
  if (!store.ok()) return 0;
  auto doc = (*store)->Get(ShardKey{"products", generation, shard}, kAnyEpoch, pk);
  return doc.ok() ? doc->version.hlc : 0;
}

// The live generation of "products" and, per shard, its owners per group.
struct Routes {
  uint64_t generation = 0;
  std::vector<std::map<std::string, std::vector<std::string>>> owners;
};

absl::StatusOr<Routes> LiveRoutes(Fleet& f) {
  auto ix = f.Indexes();
  if (!ix.ok()) return ix.status();
  const pb::GetIndexResponse& r = ix->at("products");
  Routes out;
  out.generation = r.index().live_generation();
  for (const auto& g : r.routes()) {
    if (g.generation() != out.generation) continue;
    for (const auto& s : g.routes()) {
      std::map<std::string, std::vector<std::string>> per;
      for (const auto& o : s.owners()) per[o.group()] = {o.nodes().begin(), o.nodes().end()};
      out.owners.push_back(per);
    }
  }
  return out;
}

// Lines of the coordinator's log saying recovery pass `id` failed, per task id.
std::map<uint64_t, int> ReconcileFailures(Fleet& f) {
  std::map<uint64_t, int> out;
  static const std::regex kFailed(R"(task (\d+) \(TASK_RECONCILE\) failed on)");
  std::string log = f.coordinator()->ReadLog();
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kFailed);
       it != std::sregex_iterator(); ++it) {
    ++out[std::stoull((*it)[1].str())];
  }
  return out;
}

// Checks the promise on the nodes and records the scenario's row for the chaos
// report (`stats`: the TestWriter's, or empty for the exact-pk Put writes).
void ExpectConverged(Fleet& f, const Records& records, const std::string& scenario,
                     const std::string& config, const WriterStats& stats = WriterStats()) {
  CheckOptions co = f.CheckOptionsFor("products");
  co.quiesce_timeout = absl::Seconds(90);
  auto report = CheckPromise(records, co);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_GT(report->keys_checked, 0u);
  RecordChaosResult(scenario, config, *report, stats);
}

// Loads `keys` keys ("doc:0".."doc:<keys-1>", each once) through worker 0.
Records Load(Fleet& f, int keys) {
  WriterOptions wo = f.WriterOptionsFor("products");
  wo.worker_addresses = {f.worker_address(0)};
  wo.keys = keys;
  wo.load_first = true;
  wo.max_ops = keys;
  wo.delete_fraction = 0;
  wo.batch_size = 100;
  wo.max_duration = absl::Seconds(60);
  wo.seed = ChaosSeed();
  TestWriter writer(wo);
  EXPECT_TRUE(writer.Run().ok());
  EXPECT_EQ(writer.stats().acked(), static_cast<uint64_t>(keys));
  // A loaded machine can make a node miss some of the load (a write path that
  // suspects a slow node reports misses); the passes that repair them must end
  // before a scenario starts, or one of them stands in for the pass it forces.
  uint64_t pending = 1;
  for (int i = 0; i < 600 && pending != 0; ++i) {
    auto st = f.Status();
    pending = st.ok() ? st->pending_recovery_passes() : 1;
    if (pending != 0) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(pending, 0u) << "the load's own recovery passes never ended";
  return writer.records();
}

bool Degraded(const absl::StatusOr<std::vector<pb::WriteAck>>& acks) {
  if (!acks.ok() || acks->empty()) return false;
  for (const auto& a : *acks) {
    if (a.code() != 0 || a.degraded_groups().empty()) return false;
  }
  return true;
}

// (a) A pass that is running may already have passed the key of a new miss, so
// the new miss needs a pass of its own.
//
// r0 (g0) and r1 (g1), RF 1, one shard. Worker 0 writes; worker 1 runs every
// task (max_tasks 8 vs 1). r1's proxy delays each chunk 400 ms, so a recovery
// pass over the 3,000 documents scans a page (200 keys, in key order) about
// every 0.8 s; r0's proxy holds worker 0's traffic, so r0 misses what worker 0
// writes while worker 1's pass reaches r0. The first miss (doc:0, doc:999: the
// first and last keys) starts pass P1; once r0 holds the new doc:0, P1 has
// passed the first page; then doc:1 (first page too) is missed. Before the fix
// that miss was folded into P1, which had passed doc:1: the check failed with
// "acknowledged=3003 keys_checked=3000 lost=1" (r0 kept doc:1's previous version).
TEST(RecoveryPass, NewMissIsNotFoldedIntoARunningPass) {
  TempDir tmp("recovery");
  FleetOptions fo;
  fo.group_sizes = {1, 1};
  fo.indexes = {{"products", 1, 1}};
  fo.workers = 2;
  fo.proxied_nodes = {"r0", "r1"};
  fo.coordinator_config = NoAntiEntropy();
  fo.per_worker_config[0] = "max_tasks: 1\n";
  fo.per_worker_config[1] = "max_tasks: 8\n";
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  auto routes = LiveRoutes(f);
  ASSERT_TRUE(routes.ok()) << routes.status();
  const uint64_t gen = routes->generation;

  Records records = Load(f, 3000);
  f.node("r1").proxy->Delay(absl::Milliseconds(400));
  f.node("r0").proxy->HoldPeer(f.worker(0)->pid());

  auto first = Put(f, 0, {"doc:0", "doc:999"}, "first-miss", &records);
  ASSERT_TRUE(Degraded(first)) << "r0 should miss worker 0's write";
  // P1 repaired doc:0 on r0: it has passed the first page.
  const uint64_t v0 = records["doc:0"].version;
  for (int i = 0; i < 600 && StoredVersion(f, "r0", gen, 0, "doc:0") != v0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(StoredVersion(f, "r0", gen, 0, "doc:0"), v0) << "the first pass never started";
  const uint64_t v999 = records["doc:999"].version;
  ASSERT_NE(StoredVersion(f, "r0", gen, 0, "doc:999"), v999) << "the pass was not slow enough";

  auto second = Put(f, 0, {"doc:1"}, "second-miss", &records);
  ASSERT_TRUE(Degraded(second));
  // The worker reports misses at most once a second: let this one arrive while
  // P1 still runs (it has not reached doc:999, the last key, yet).
  absl::SleepFor(absl::Milliseconds(2500));
  ASSERT_NE(StoredVersion(f, "r0", gen, 0, "doc:999"), v999)
      << "the first pass ended before the second miss was reported";

  f.node("r1").proxy->Pass();
  // r0 keeps holding worker 0's traffic: its missed writes never land late.
  ExpectConverged(f, records, "16.2a",
                  "AE off; r0 misses a key a running recovery pass has passed");
}

// (b) A pass that fails more than task_retries (5) times while its target is
// unreachable is retried until the node is back. Before the fix it was deleted
// at its 6th failure and the check failed with "acknowledged=200 keys_checked=40
// lost=27" (27 keys absent on r0).
TEST(RecoveryPass, PassFailingPastTaskRetriesIsRetriedUntilItSucceeds) {
  TempDir tmp("recovery");
  FleetOptions fo;
  fo.group_sizes = {1, 1};
  fo.indexes = {{"products", 4, 1}};
  fo.workers = 1;
  fo.proxied_nodes = {"r0"};
  fo.coordinator_config = NoAntiEntropy();
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  f.node("r0").proxy->Cut();
  WriterOptions wo = f.WriterOptionsFor("products");
  wo.keys = 40;
  wo.max_ops = 200;
  wo.streams = 1;
  wo.batch_size = 10;
  wo.max_duration = absl::Seconds(30);
  wo.seed = ChaosSeed();
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Run().ok());
  ASSERT_GT(writer.stats().degraded, 0u);

  // Some pass failed more than task_retries times (the 6th failure is where it was
  // given up).
  auto most_failures = [&f] {
    int most = 0;
    for (const auto& [id, n] : ReconcileFailures(f)) most = std::max(most, n);
    return most;
  };
  for (int i = 0; i < 600 && most_failures() < 7; ++i) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_GE(most_failures(), 6) << f.coordinator()->LogTail(40);

  f.node("r0").proxy->Pass();
  ExpectConverged(f, writer.records(), "16.2b",
                  "AE off; recovery pass failing past task_retries (source cut), then healed",
                  writer.stats());
}

// (c) A pass fenced by a cutover runs again at the new epoch on the shard's
// current owners.
//
// g0 = {r0, r1}, g1 = {r2}, RF 1, one shard. X, the g0 owner, misses a write to
// the last key; its pass P (source r2, slowed by r2's proxy) is still scanning
// when a remove-node plan moves the shard from X to Y: the cutover fences X at
// E2 and P fails "fenced". Y was copied from X, so Y lacks the write too. Before
// the fix P failed as not retryable ("r1: fenced: the shard's fence is 4") and was
// deleted: the check failed with "lost=1", Y holding doc:999's previous version.
TEST(RecoveryPass, PassFencedByACutoverIsReissuedOnTheCurrentOwners) {
  TempDir tmp("recovery");
  FleetOptions fo;
  fo.group_sizes = {2, 1};
  fo.indexes = {{"products", 1, 1}};
  fo.workers = 1;
  fo.proxied_nodes = {"r0", "r1", "r2"};
  fo.coordinator_config = NoAntiEntropy();
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  auto routes = LiveRoutes(f);
  ASSERT_TRUE(routes.ok()) << routes.status();
  ASSERT_EQ(routes->owners.size(), 1u);
  ASSERT_EQ(routes->owners[0]["g0"].size(), 1u);
  const std::string x = routes->owners[0]["g0"][0];
  const std::string y = x == "r0" ? "r1" : "r0";

  Records records = Load(f, 4000);
  f.node("r2").proxy->Delay(absl::Milliseconds(400));
  f.node(x).proxy->Cut();
  auto missed = Put(f, 0, {"doc:999"}, "missed-by-x", &records);
  ASSERT_TRUE(Degraded(missed)) << "X should miss the write";
  f.node(x).proxy->Pass();
  // Wait until the pass is leased (it scans for ~16 s through r2's delay).
  auto leased = [&f] {
    return f.coordinator()->ReadLog().find("(TASK_RECONCILE, products shard 0) leased to") !=
           std::string::npos;
  };
  for (int i = 0; i < 300 && !leased(); ++i) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_TRUE(leased()) << f.coordinator()->LogTail(40);
  absl::SleepFor(absl::Milliseconds(500));  // past the failures while X was cut

  pb::CreatePlanRequest remove;
  remove.set_kind(pb::PLAN_REMOVE_NODE);
  remove.set_node_id(x);
  auto plan = f.CreatePlan(remove);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto done = f.WaitForPlanEnd(plan->id(), absl::Seconds(90));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), pb::PLAN_DONE);
  // The cutover did fence the running pass.
  const std::string log = f.coordinator()->ReadLog();
  ASSERT_TRUE(std::regex_search(log, std::regex(R"(\(TASK_RECONCILE\) failed on .*fenced)")))
      << "the pass was not fenced by the cutover\n"
      << f.coordinator()->LogTail(60);

  f.node("r2").proxy->Pass();
  ExpectConverged(f, records, "16.2c",
                  "AE off; recovery pass fenced by a cutover, reissued on the new owners");
  EXPECT_EQ(StoredVersion(f, y, routes->generation, 0, "doc:999"), records["doc:999"].version);
}

// (d) Misses are queued while no coordinator answers and reported when one does.
//
// The coordinator is SIGSTOPped (shorter than the worker lease, so writes go on,
// DESIGN §9a) while r0 misses writes, then killed and restarted. Before the fix
// the worker wrote its misses on the session stream, which took them into the
// stopped coordinator's socket and dropped them from the worker: the check failed
// with "acknowledged=200 keys_checked=40 lost=33" (33 keys absent on r0).
TEST(RecoveryPass, MissesWaitForACoordinatorAndAreReportedWhenOneAnswers) {
  TempDir tmp("recovery");
  FleetOptions fo;
  fo.group_sizes = {1, 1};
  fo.indexes = {{"products", 4, 1}};
  fo.workers = 1;
  fo.proxied_nodes = {"r0"};
  fo.coordinator_config = NoAntiEntropy();
  fo.coordinator_config["worker_lease_ttl"] = "20s";
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  ASSERT_TRUE(f.StopCoordinator().ok());
  f.node("r0").proxy->Cut();
  WriterOptions wo = f.WriterOptionsFor("products");
  wo.keys = 40;
  wo.max_ops = 200;
  wo.streams = 1;
  wo.batch_size = 10;
  wo.max_duration = absl::Seconds(30);
  wo.seed = ChaosSeed();
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Run().ok());
  ASSERT_GT(writer.stats().degraded, 0u) << "writes should go on, degraded, on the lease";
  // Past the worker's next miss report (at most once a second).
  absl::SleepFor(absl::Milliseconds(2500));
  ASSERT_TRUE(f.KillCoordinator().ok());
  f.node("r0").proxy->Pass();
  ASSERT_TRUE(f.RestartCoordinator().ok());
  ASSERT_TRUE(f.WaitForWorkers(1).ok());
  ExpectConverged(f, writer.records(), "16.2d",
                  "AE off; misses queued while no coordinator answers", writer.stats());
}

// (e) A worker that dies with misses unreported: its session ends without the
// `stopping` report, so when its lease runs out the coordinator schedules a
// recovery pass of every written shard (DESIGN §4).
//
// With the coordinator SIGSTOPped and r0 cut (worker 0's 6 s lease covers it),
// worker 0 writes one key of shard 0, then keys of shards 1-3 and is SIGKILLed at
// once: those misses never left it. Worker 1 runs the passes. Before the fix only
// shard 0's miss could be reported (the worker sent at most one report a second,
// into the stopped coordinator's socket) and nothing covered shards 1-3: the check
// failed with "acknowledged=74 keys_checked=40 lost=33" (r0 holding the previous
// versions of shards 1-3's keys).
TEST(RecoveryPass, WorkerDeathWithUnreportedMissesSchedulesShardPasses) {
  TempDir tmp("recovery");
  FleetOptions fo;
  fo.group_sizes = {1, 1};
  fo.indexes = {{"products", 4, 1}};
  fo.workers = 2;
  fo.proxied_nodes = {"r0"};
  fo.coordinator_config = NoAntiEntropy();
  fo.coordinator_config["worker_lease_ttl"] = "6s";
  fo.per_worker_config[0] = "max_tasks: 1\n";
  fo.per_worker_config[1] = "max_tasks: 8\n";
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  Records records = Load(f, 40);
  std::string first;
  std::vector<std::string> rest;
  for (int i = 0; i < 40; ++i) {
    const std::string pk = absl::StrCat("doc:", i);
    if (ShardForKey(pk, 4) == 0) {
      if (first.empty()) first = pk;
    } else {
      rest.push_back(pk);
    }
  }
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(rest.empty());

  ASSERT_TRUE(f.StopCoordinator().ok());
  f.node("r0").proxy->Cut();
  ASSERT_TRUE(Degraded(Put(f, 0, {first}, "before-death", &records)));
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(Degraded(Put(f, 0, rest, "before-death", &records)));
  ASSERT_TRUE(f.KillWorker(0).ok());
  f.node("r0").proxy->Pass();
  ASSERT_TRUE(f.ContCoordinator().ok());
  // The dead worker's lease runs out; the passes it causes repair r0.
  for (int i = 0; i < 300; ++i) {
    if (f.coordinator()->ReadLog().find("ended without its stopping miss report") !=
        std::string::npos) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ExpectConverged(f, records, "16.2e", "AE off; worker SIGKILLed with unreported misses");
}

}  // namespace
}  // namespace miroir::testing
