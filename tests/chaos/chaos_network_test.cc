// Network, process-stop and clock scenarios of the chaos suite (label `chaos`,
// issue 8), on the real programs with the harness TcpProxy in front of store
// nodes. Seeded by MIROIR_CHAOS_SEED; one result row each (chaos_util.h); the
// writer's check (DESIGN §4) asserted.
//
//   16 drain timeout: one worker's store traffic held past drain_timeout; the
//      fence refuses the stuck write; the retry lands at the new epoch
//   20 zombie writer: held traffic + SIGSTOP across the cutover, SIGCONT after
//      cleanup
//   25 workers with skewed clocks (+5 s / -5 s) writing the same keys across a move
//   15 the new node partitioned during the cutover, then healed
//   18 partial failure: a different failure rate per node, hence per shard
//   26 tombstone GC window: deletes whose copy to the joining node failed, the
//      plan paused longer than tombstone_grace while scheduled AE runs
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <random>

#include "absl/algorithm/container.h"
#include "chaos/chaos_faults.h"
#include "chaos/chaos_util.h"
#include "common/grpc_server.h"
#include "common/routing.h"
#include "harness/move_scenario.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

// Worker 0 ("A") is the one whose traffic to r0 the proxy holds; worker 1 ("B")
// takes every task (max_tasks 8 vs 1: the coordinator leases to the worker with
// the most free slots), so fences and copies never wait behind the hold.
FleetOptions HeldWorkerFleet(const std::string& a_extra_yaml) {
  FleetOptions fo;
  fo.group_sizes = {2};
  fo.workers = 2;
  fo.indexes = {{"products", 4, 2}};
  fo.proxied_nodes = {"r0"};
  fo.per_worker_config[0] = "max_tasks: 1\n" + a_extra_yaml;
  fo.per_worker_config[1] = "max_tasks: 8\n";
  fo.per_worker_flags[0] = {"--metrics-listen", "127.0.0.1:0"};
  return fo;
}

bool AnyMoveIn(const pb::Plan& p, std::initializer_list<pb::MoveState> states) {
  for (const auto& m : p.moves()) {
    for (pb::MoveState s : states) {
      if (m.state() == s) return true;
    }
  }
  return false;
}

// Waits (bounded) until every move of the plan is active or later, or the plan ended.
absl::Status WaitAllCutOver(Fleet& f, uint64_t id, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto p = f.GetPlan(id);
    if (p.ok()) {
      if (PlanEnded(p->plan().state())) return absl::OkStatus();
      bool all = true;
      for (const auto& m : p->plan().moves()) {
        all &= m.state() >= pb::MOVE_ACTIVE && m.state() <= pb::MOVE_DONE;
      }
      if (all) return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("moves not cut over in time");
}

// ---- 16: drain timeout ----

TEST(ChaosDrainTimeout, StuckWriteFencedAndRetriedAtTheNewEpoch) {
  TempDir tmp("chaos_drain");
  // A's write deadline and store op timeout outlast the hold, so its stuck write
  // stays in flight (not timed out) until the proxy lets it through.
  FleetOptions fo = HeldWorkerFleet("write_deadline: 40s\nstore:\n  op_timeout: 35s\n");
  // r0 leaves a group of three: every shard r0 holds moves, so whatever write of
  // A's the proxy holds is one of a shard being cut over, which the fence must
  // refuse. (With a node added instead, the held write could be one of a shard
  // that stays, which no fence refuses: the test passed or failed by chance.)
  fo.group_sizes = {3};
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  WriterOptions wo = f.WriterOptionsFor();
  wo.keys = 400;
  wo.streams = 4;  // streams 0, 2 on A; 1, 3 on B
  wo.batch_size = 8;
  wo.ops_per_second = 300;
  wo.load_first = true;
  wo.batch_timeout = absl::Seconds(60);
  wo.max_duration = absl::Seconds(120);
  wo.seed = ChaosSeed();
  auto w = StartWriter(wo);
  ASSERT_TRUE(w.ok()) << w.status();
  pb::CreatePlanRequest req = RemoveNodeRequest("r0");
  req.set_throttle_docs_per_s(300);
  auto plan = f.CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  for (const auto& m : plan->moves()) {
    ASSERT_TRUE(absl::c_linear_search(m.old_owners(), "r0")) << "a move r0 is not part of";
  }
  ASSERT_TRUE(f.WaitForMoveState(plan->id(), pb::MOVE_COPYING, absl::Seconds(60)).ok());
  TcpProxy& proxy = *f.node("r0").proxy;
  proxy.HoldPeer(f.worker(0)->pid());
  uint64_t held_bytes = 0;
  for (int i = 0; i < 250 && held_bytes == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    held_bytes = proxy.peer_bytes_held();
  }
  ASSERT_GT(held_bytes, 0u) << "worker A had no write in flight to r0";
  // The cutover runs with A's write stuck: pause, drain_timeout (the default), fence.
  absl::Status cut = WaitAllCutOver(f, plan->id(), absl::Seconds(90));
  held_bytes = proxy.peer_bytes_held();
  proxy.Release();
  ASSERT_TRUE(cut.ok()) << cut;
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(90));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  absl::SleepFor(absl::Milliseconds(500));
  (*w)->Stop();
  (*w)->Wait();
  const int mport = MetricsPort(f, 0);
  const double fenced =
      mport > 0 ? MetricValue(ScrapeMetrics(mport), "miroir_worker_fenced_retries_total") : -1;
  auto report = CheckPromise((*w)->records(), f.CheckOptionsFor());
  ASSERT_TRUE(report.ok()) << report.status();
  WriterStats st = (*w)->stats();
  RecordChaosResult(
      "16",
      absl::StrCat("worker A's r0 traffic held across the cutover of r0's removal (", held_bytes,
                   " B at release), default drain_timeout; A fenced retries ", fenced),
      *report, st);
  EXPECT_GT(st.max_batch_latency, absl::Milliseconds(500)) << "no write outlasted drain_timeout";
  EXPECT_GT(fenced, 0) << "worker A never saw its stuck write refused by a fence";
  EXPECT_EQ(st.unknown, 0u) << "a stuck write was not retried to an acknowledgement";
  EXPECT_TRUE(report->ok()) << "seed " << ChaosSeed() << "\n" << report->Summary();
}

// ---- 20: the zombie writer ----

TEST(ChaosZombieWriter, StoppedAcrossCutoverNothingStaleLands) {
  TempDir tmp("chaos_zombie");
  auto fleet = Fleet::Start(tmp.path(), HeldWorkerFleet(""));
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  // Z: the zombie's client (worker A only), keys z:*. M: background load on B.
  WriterOptions zo = f.WriterOptionsFor();
  zo.worker_addresses = {f.worker_address(0)};
  zo.key_prefix = "z:";
  zo.keys = 64;
  zo.streams = 2;
  zo.batch_size = 8;
  zo.ops_per_second = 100;
  zo.load_first = true;
  zo.batch_timeout = absl::Seconds(120);  // the stop must not make it give up
  zo.max_duration = absl::Seconds(150);
  zo.seed = ChaosSeed();
  auto z = StartWriter(zo);
  ASSERT_TRUE(z.ok()) << z.status();
  WriterOptions mo = f.WriterOptionsFor();
  mo.worker_addresses = {f.worker_address(1)};
  mo.keys = 400;
  mo.streams = 2;
  mo.batch_size = 8;
  mo.ops_per_second = 200;
  mo.load_first = true;
  mo.max_duration = absl::Seconds(150);
  mo.seed = ChaosSeed() + 100;
  auto m = StartWriter(mo);
  ASSERT_TRUE(m.ok()) << m.status();

  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(300);
  auto plan = f.CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(f.WaitForMoveState(plan->id(), pb::MOVE_COPYING, absl::Seconds(60)).ok());
  TcpProxy& proxy = *f.node("r0").proxy;
  proxy.HoldPeer(f.worker(0)->pid());
  uint64_t held_bytes = 0;
  for (int i = 0; i < 250 && held_bytes == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    held_bytes = proxy.peer_bytes_held();
  }
  ASSERT_GT(held_bytes, 0u) << "worker A had no write in flight to r0";
  ASSERT_TRUE(f.worker(0)->Stop().ok());  // SIGSTOP: the zombie
  // O: newer writes on the zombie's keys through B while it is stopped.
  WriterOptions oo = f.WriterOptionsFor();
  oo.worker_addresses = {f.worker_address(1)};
  oo.key_prefix = "z:";
  oo.keys = 64;
  oo.streams = 2;
  oo.batch_size = 8;
  oo.load_first = true;
  oo.max_ops = 256;
  oo.max_duration = absl::Seconds(60);
  oo.seed = ChaosSeed() + 200;
  TestWriter o(oo);
  ASSERT_TRUE(o.Run().ok());
  // Across the cutover and the cleanup.
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(120));
  held_bytes = proxy.peer_bytes_held();
  // The held (stale) store writes reach r0 now, while A is still stopped; then A
  // resumes.
  proxy.Release();
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_TRUE(f.worker(0)->Cont().ok());
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  absl::SleepFor(absl::Seconds(3));  // let A's stuck batches resolve
  StopAll({z->get(), m->get()});
  // Expected state of z:* keys: the newest acknowledged operation, O's (issued
  // after Z's were stuck) unless Z got a newer one acknowledged after resuming.
  std::map<std::string, KeyRecord> records = (*m)->records();
  uint64_t zombie_unknown = 0;
  auto zr = (*z)->records();
  auto orr = o.records();
  for (auto& [k, rec] : zr) {
    zombie_unknown += rec.unknown ? 1 : 0;
    auto it = orr.find(k);
    if (it == orr.end() || !it->second.acked) {
      records[k] = rec;
      continue;
    }
    KeyRecord merged = it->second;
    if (rec.acked && !rec.unknown && rec.version > merged.version) merged = rec;
    merged.acked_ops = rec.acked_ops + it->second.acked_ops;
    records[k] = merged;
  }
  for (auto& [k, rec] : orr) {
    if (!records.count(k)) records[k] = rec;
  }
  auto report = CheckPromise(records, f.CheckOptionsFor());
  ASSERT_TRUE(report.ok()) << report.status();
  WriterStats st = MergeStats({z->get(), m->get(), &o});
  RecordChaosResult(
      "20",
      absl::StrCat("worker A: r0 traffic held, SIGSTOP copying..cleanup, ", held_bytes,
                   " B released after cleanup; ", zombie_unknown, " zombie writes unknown; ",
                   o.stats().acked(), " newer writes on its keys"),
      *report, st);
  EXPECT_GT(o.stats().acked(), 0u);
  EXPECT_TRUE(report->ok()) << "seed " << ChaosSeed() << "\n" << report->Summary();
}

// ---- 25: workers with skewed clocks ----

TEST(ChaosSkewedClocks, SameKeysThroughSkewedWorkersAcrossAMove) {
  TempDir tmp("chaos_skew");
  ScenarioOptions so;
  so.fleet.group_sizes = {2};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", 4, 2}};
  so.fleet.worker_clock_offsets_ms = {5000, -5000};
  auto fleet = Fleet::Start(tmp.path(), so.fleet);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  // Every batch through the other worker: each key's operations alternate between
  // the +5 s and the -5 s clock, with the after_version token.
  WriterOptions wo = f.WriterOptionsFor();
  wo.keys = 200;
  wo.streams = 4;
  wo.batch_size = 8;
  wo.ops_per_second = 300;
  wo.rotate_workers = true;
  wo.load_first = true;
  wo.max_duration = absl::Seconds(120);
  wo.seed = ChaosSeed();
  auto w = StartWriter(wo);
  ASSERT_TRUE(w.ok()) << w.status();
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(200);
  auto plan = f.CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(120));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  (*w)->Stop();
  (*w)->Wait();
  auto report = CheckPromise((*w)->records(), f.CheckOptionsFor());
  ASSERT_TRUE(report.ok()) << report.status();
  RecordChaosResult("25", "worker clocks +5 s / -5 s, each key alternating between them", *report,
                    (*w)->stats());
  EXPECT_TRUE(report->ok()) << "seed " << ChaosSeed() << "\n" << report->Summary();
}

// ---- 15: the new node partitioned during the cutover, then healed ----

TEST(ChaosPartitionedNewNode, PartitionedDuringCutoverThenHealed) {
  TempDir tmp("chaos_partition");
  ScenarioOptions so;
  so.fleet.group_sizes = {2};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", 4, 2}};
  so.keys = 600;
  so.write_rate = 300;
  so.seed = ChaosSeed();
  so.max_duration = absl::Seconds(150);
  // Tasks retry with no backoff: the default budget (5) is spent in milliseconds.
  so.fleet.coordinator_config["migration"]["task_retries"] = 100000;
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0", /*proxied=*/true);
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(300);
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // The first move to leave the copy heads into the cutover: cut r9 there.
  std::string at = "plan ended";
  for (int i = 0; i < 12000; ++i) {
    auto p = f.GetPlan(plan->id());
    if (p.ok()) {
      if (PlanEnded(p->plan().state())) break;
      if (AnyMoveIn(p->plan(), {pb::MOVE_CATCHING_UP, pb::MOVE_PAUSED, pb::MOVE_FINAL_DELTA,
                                pb::MOVE_ACTIVE})) {
        for (const auto& m : p->plan().moves()) {
          if (m.state() >= pb::MOVE_CATCHING_UP && m.state() <= pb::MOVE_ACTIVE) {
            at = pb::MoveState_Name(m.state());
            break;
          }
        }
        break;
      }
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  TcpProxy& proxy = *f.node("r9").proxy;
  proxy.Cut();
  absl::SleepFor(absl::Seconds(2));
  proxy.Pass();
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(120));
  ASSERT_TRUE(end.ok()) << end.status();
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  RecordChaosResult(
      "15", absl::StrCat("joining r9 cut 2 s from ", at, ", then healed; plan ", PlanOutcome(*end)),
      *report, (*sc)->writer().stats());
  EXPECT_NE(at, "plan ended") << "the plan ended before the partition";
  ExpectPromiseAndOutcome(*end, *report, pb::PLAN_DONE);
}

// ---- 18: a different failure rate per node, hence per shard ----

TEST(ChaosPartialFailure, DifferentFailureRatesPerShard) {
  TempDir tmp("chaos_partial");
  ScenarioOptions so;
  so.fleet.group_sizes = {3};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", 6, 2}};
  so.fleet.proxied_nodes = {"r0", "r1", "r2"};
  so.keys = 600;
  so.write_rate = 300;
  so.seed = ChaosSeed();
  so.max_duration = absl::Seconds(150);
  // Tasks retry with no backoff: the default budget (5) is spent in milliseconds.
  so.fleet.coordinator_config["migration"]["task_retries"] = 100000;
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(300);
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // Every 200 ms each node's path is cut for the next slot with its own rate.
  const std::map<std::string, double> rate = {{"r0", 0.3}, {"r1", 0.1}, {"r2", 0.0}};
  std::mt19937_64 rng(ChaosSeed());
  std::map<std::string, int> cut_slots;
  bool ended = false;
  for (int slot = 0; slot < 600 && !ended; ++slot) {
    for (const auto& [id, p] : rate) {
      bool cut = std::bernoulli_distribution(p)(rng);
      if (cut) {
        f.node(id).proxy->Cut();
        ++cut_slots[id];
      } else {
        f.node(id).proxy->Pass();
      }
    }
    absl::SleepFor(absl::Milliseconds(200));
    auto pl = f.GetPlan(plan->id());
    ended = pl.ok() && PlanEnded(pl->plan().state());
  }
  for (const auto& [id, p] : rate) f.node(id).proxy->Pass();
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(120));
  ASSERT_TRUE(end.ok()) << end.status();
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  // Unknown outcomes per shard: the failure rate each shard actually saw.
  std::map<uint32_t, int> unknown_by_shard;
  for (const auto& [k, r] : (*sc)->writer().records()) {
    if (r.unknown) ++unknown_by_shard[ShardForKey(k, 6)];
  }
  std::string per_shard;
  for (uint32_t s = 0; s < 6; ++s)
    absl::StrAppend(&per_shard, s == 0 ? "" : "/", unknown_by_shard[s]);
  RecordChaosResult(
      "18",
      absl::StrCat("cut per 200ms slot r0 30%, r1 10%, r2 0% (", cut_slots["r0"], "/",
                   cut_slots["r1"], "/", cut_slots["r2"], " slots); unknown keys by shard ",
                   per_shard, "; plan ", PlanOutcome(*end)),
      *report, (*sc)->writer().stats());
  ExpectPromiseAndOutcome(*end, *report, pb::PLAN_DONE);
}

// ---- 26: tombstone GC window ----

absl::Status PlanRpc(Fleet& f, uint64_t id, bool pause) {
  pb::PlanIdRequest req;
  req.set_id(id);
  pb::GetPlanResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return FromGrpc(pause ? f.coord().PausePlan(&ctx, req, &resp)
                        : f.coord().ResumePlan(&ctx, req, &resp));
}

TEST(ChaosTombstoneGc, PausedPastTombstoneGraceNothingResurrected) {
  TempDir tmp("chaos_tombstone_gc");
  ScenarioOptions so;
  so.fleet.group_sizes = {2};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", 4, 2}};
  so.fleet.coordinator_config["anti_entropy"]["enabled"] = true;
  so.fleet.coordinator_config["anti_entropy"]["schedule"] = "every 1s";
  so.fleet.coordinator_config["anti_entropy"]["tombstone_grace"] = "1s";
  so.fleet.coordinator_config["migration"]["task_retries"] = 100000;
  so.keys = 400;
  so.write_rate = 200;
  so.delete_fraction = 0.5;
  so.seed = ChaosSeed();
  so.max_duration = absl::Seconds(150);
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0", /*proxied=*/true);
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(400);
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // Once the copy is done (r9 holds live documents), cut r9: the deletes that
  // follow are acknowledged by the old owners and miss r9 (its tombstones).
  ASSERT_TRUE(f.WaitForMoveState(plan->id(), pb::MOVE_CATCHING_UP, absl::Seconds(60)).ok());
  TcpProxy& proxy = *f.node("r9").proxy;
  proxy.Cut();
  const uint64_t deletes_before = (*sc)->writer().stats().acked_deletes;
  absl::SleepFor(absl::Milliseconds(800));
  ASSERT_TRUE(PlanRpc(f, plan->id(), /*pause=*/true).ok());
  // Paused 4x tombstone_grace; AE runs every second on the shards not mid-move.
  absl::SleepFor(absl::Seconds(4));
  const uint64_t deletes_missed = (*sc)->writer().stats().acked_deletes - deletes_before;
  proxy.Pass();
  ASSERT_TRUE(PlanRpc(f, plan->id(), /*pause=*/false).ok());
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(120));
  ASSERT_TRUE(end.ok()) << end.status();
  auto ae = f.Ctl({"anti-entropy", "status"});
  const bool ae_ran = ae.ok() && ae->stdout_text.find("(scheduled)") != std::string::npos;
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  RecordChaosResult(
      "26",
      absl::StrCat("AE every 1s, tombstone_grace 1s; r9 cut, ", deletes_missed,
                   " deletes acked while r9 was cut, plan paused 4 s; plan ", PlanOutcome(*end)),
      *report, (*sc)->writer().stats());
  EXPECT_GT(deletes_missed, 0u) << "no delete missed the joining node";
  EXPECT_TRUE(ae_ran) << "no scheduled AE run during the pause";
  EXPECT_EQ(report->resurrected, 0u) << report->Summary();
  ExpectPromiseAndOutcome(*end, *report, pb::PLAN_DONE);
}

}  // namespace
}  // namespace miroir::testing
