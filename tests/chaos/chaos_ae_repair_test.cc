// Anti-entropy on, and a repair it must make (DESIGN §8): silent divergence no
// write path reports. In every other AE-on scenario the recovery passes and the
// moves' own copies leave AE nothing to repair (its column in the chaos report
// is 0); this one asserts what AE repaired.
//
// An add-node plan (group of 2 -> 3, rf 2) under live writes with
// `anti_entropy.schedule: every 1s`; once it is DONE, a newer version of K
// loaded keys is written straight into r1 through the store adapter (no worker,
// so no miss is reported and no recovery pass runs): every other owner of those
// keys is stale. The scheduled rounds must find and repair them while the
// writer goes on: the AntiEntropy API's runs count at least K mismatches and K
// repair writes, and the whole check holds with the injected versions as the
// expected state, at least K found and K repaired in the runs so far. Without
// the scheduled rounds (`schedule: every 6h`, tried while writing this test)
// the runs counted 0 mismatches and 0 repairs and the check found the other
// owner of every injected key behind: lost=40.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "chaos/chaos_faults.h"
#include "chaos/chaos_util.h"
#include "common/routing.h"
#include "harness/move_scenario.h"
#include "miroir/v1/anti_entropy.grpc.pb.h"
#include "worker/stores/redis_store.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

struct AeTotals {
  uint64_t mismatches = 0;
  uint64_t repaired = 0;
};

absl::StatusOr<AeTotals> AeRunsSince(Fleet& f, int64_t since_ms) {
  auto ae = pb::AntiEntropy::NewStub(
      grpc::CreateChannel(f.coordinator_address(), grpc::InsecureChannelCredentials()));
  pb::AntiEntropyStatusResponse runs;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status st = ae->Status(&ctx, pb::AntiEntropyStatusRequest(), &runs);
  if (!st.ok()) return absl::UnavailableError(st.error_message());
  AeTotals t;
  for (const auto& r : runs.runs()) {
    if (!r.scheduled() || r.started_ms() < since_ms) continue;
    t.mismatches += r.mismatches();
    t.repaired += r.repaired();
  }
  return t;
}

TEST(ChaosAeRepair, SilentDivergenceAfterAPlanRepairedByScheduledRounds) {
  constexpr int kInjected = 40;
  constexpr uint32_t kShards = 4;
  TempDir tmp("chaos_ae_repair");
  ScenarioOptions so;
  so.fleet.group_sizes = {2};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", kShards, 2}};
  so.fleet.coordinator_config["anti_entropy"]["enabled"] = true;
  so.fleet.coordinator_config["anti_entropy"]["schedule"] = "every 1s";
  so.keys = 400;
  so.write_rate = 150;
  so.seed = ChaosSeed();
  so.max_duration = absl::Seconds(120);
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();

  // Keys the writer never touches again: the injection's targets.
  WriterOptions load = f.WriterOptionsFor();
  load.key_prefix = "inj:";
  load.keys = kInjected;
  load.load_first = true;
  load.load_only = true;
  load.batch_size = 20;
  load.max_duration = absl::Seconds(30);
  TestWriter loader(load);
  ASSERT_TRUE(loader.Run().ok());
  ASSERT_EQ(loader.stats().acked_puts, static_cast<uint64_t>(kInjected));

  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(400);
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(90));
  ASSERT_TRUE(end.ok()) << end.status();
  ASSERT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);

  // Inject on r1, which owns every shard it still holds (rf 2 of 3 nodes).
  auto status = f.Status();
  ASSERT_TRUE(status.ok()) << status.status();
  auto idx = f.Indexes();
  ASSERT_TRUE(idx.ok()) << idx.status();
  const uint64_t gen = idx->at("products").index().live_generation();
  auto r1 = RedisStore::Create(f.redis("r1").address(), StoreOptions{});
  ASSERT_TRUE(r1.ok()) << r1.status();
  std::map<std::string, KeyRecord> expected = loader.records();
  const int64_t injected_ms = absl::ToUnixMillis(absl::Now());
  int injected = 0;
  for (auto& [key, rec] : expected) {
    const ShardKey shard{"products", gen, ShardForKey(key, kShards)};
    if (!(*r1)->Get(shard, kAnyEpoch, key).ok()) continue;  // r1 no longer owns it
    const std::string body = absl::StrCat("{\"injected\":\"", key, "\"}");
    auto applied = (*r1)->Apply(shard, status->epoch(),
                                {Mutation{key, Version{rec.version + 1000, 77}, false, body, 0}});
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ((*applied)[0].outcome, ApplyOutcome::kApplied) << key;
    rec.version += 1000;
    rec.writer = 77;
    rec.body = body;
    ++injected;
  }
  ASSERT_GT(injected, 0) << "r1 holds none of the injected keys";

  // The scheduled rounds (every 1 s, over every shard) find and repair them.
  AeTotals totals;
  for (int i = 0; i < 300 && totals.repaired < static_cast<uint64_t>(injected); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    auto t = AeRunsSince(f, injected_ms);
    ASSERT_TRUE(t.ok()) << t.status();
    totals = *t;
  }
  // Each injected key diverges on one replica (r1 newer than the other owner):
  // one mismatch and one repair write each; the live writer's in-flight writes
  // may add a few more.
  EXPECT_GE(totals.mismatches, static_cast<uint64_t>(injected));
  EXPECT_GE(totals.repaired, static_cast<uint64_t>(injected));

  (*sc)->writer().Stop();
  (*sc)->writer().Wait();
  for (const auto& [k, rec] : (*sc)->writer().records()) expected[k] = rec;
  auto report = CheckPromise(expected, f.CheckOptionsFor());
  ASSERT_TRUE(report.ok()) << report.status();
  RecordChaosResult("AE",
                    absl::StrCat("AE every 1s; after an add-node plan (2->3, rf 2), ", injected,
                                 " newer versions written straight into r1; AE found ",
                                 totals.mismatches, ", repaired ", totals.repaired),
                    *report, (*sc)->writer().stats());
  EXPECT_TRUE(report->ok()) << report->Summary();
}

}  // namespace
}  // namespace miroir::testing
