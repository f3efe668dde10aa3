// Chaos scenarios on resharding (issue 8): real coordinator, workers and
// redis-server nodes, the one test writer's check (DESIGN §4) after each.
//   23  reshard swap under concurrent writers, coordinator SIGKILL between the
//       fence and the flip (the nodes' traffic is slowed through proxies so the
//       swap lasts long enough to land the kill inside it), then restart;
//   27  rollback after the swap with a node down (SIGKILL, AOF on) during the
//       reverse dual-write, restarted before the rollback: nothing lost;
//   HA.3  23 on the etcd control plane (three coordinators, 3-member etcd): the
//       leader SIGKILLed in the swap, a standby takes over and resumes it; no
//       client write fails (the swap's held writes wait for it).
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "chaos/chaos_ha.h"
#include "chaos/chaos_util.h"
#include "common/reshard_names.h"
#include "harness/move_scenario.h"
#include "harness/reshard_ops.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

ScenarioOptions ReshardFleet(bool proxied, bool etcd = false) {
  ScenarioOptions so;
  if (etcd) UseEtcdControlPlane(&so);
  so.fleet.group_sizes = {2, 2};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", 8, 1}};
  if (proxied) so.fleet.proxied_nodes = {"r0", "r1", "r2", "r3"};
  YAML::Node rs;
  rs["retain_old_index_hours"] = 48;
  so.fleet.coordinator_config["resharding"] = rs;
  so.keys = 800;
  so.write_rate = 250;
  so.delete_fraction = 0.2;
  so.seed = ChaosSeed();
  so.max_duration = absl::Seconds(150);
  return so;
}

// The control plane's fault in the swap: the one coordinator SIGKILLed and
// restarted (23), or the etcd leader SIGKILLed and a standby taking over (HA.3).
void RunSwapKill(bool etcd) {
  TempDir tmp(etcd ? "chaos_ha_reshard_swap_kill" : "chaos_reshard_swap_kill");
  ScenarioOptions so = ReshardFleet(/*proxied=*/true, etcd);
  // The slowed swap lasts a few seconds: inside this stall budget. On etcd the
  // held writes also wait out the failover (HoldWritesAcrossFailover).
  so.fleet.coordinator_config["migration"]["max_write_stall"] = "15s";
  if (etcd) HoldWritesAcrossFailover(&so);
  // No verify: this scenario is about the swap (verify's key-by-key re-reads
  // would crawl through the slowed proxies).
  so.fleet.coordinator_config["resharding"]["verify_before_swap"] = false;
  // Under +200 ms per round trip a catch-up round takes over a second, so it
  // sees a few hundred changes at 250 writes/s: let it converge at that.
  so.fleet.coordinator_config["migration"]["catch_up_threshold"] = 5000;
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  // Every store round trip takes ~200 ms more from here on: the fence and the
  // final delta of the swap last seconds.
  for (const char* n : {"r0", "r1", "r2", "r3"}) f.node(n).proxy->Delay(absl::Milliseconds(100));
  ASSERT_TRUE(StartReshard(f, ReshardTo(16)).ok());
  auto in_swap = WaitForReshardState(f, {"swap_fenced", "swap_final_delta"}, absl::Seconds(150));
  ASSERT_TRUE(in_swap.ok()) << in_swap.status();
  const absl::Time killed_at = absl::Now();
  std::string failover;
  if (etcd) {
    auto old = f.KillLeader();
    ASSERT_TRUE(old.ok()) << old.status();
    for (const char* n : {"r0", "r1", "r2", "r3"}) f.node(n).proxy->Pass();
    auto next = f.WaitForLeader(kHaWorkerLease, *old);
    ASSERT_TRUE(next.ok()) << "the failover did not fit the worker lease: " << next.status();
    failover = absl::StrFormat(", new leader after %.1f s",
                               absl::ToDoubleSeconds(absl::Now() - killed_at));
    ASSERT_TRUE(f.RestartCoordinator(*old).ok());  // replaced: it stands by
  } else {
    ASSERT_TRUE(f.KillCoordinator().ok());
    for (const char* n : {"r0", "r1", "r2", "r3"}) f.node(n).proxy->Pass();
    ASSERT_TRUE(f.RestartCoordinator().ok());
  }
  auto kept = ReshardCall(f, "status");
  ASSERT_TRUE(kept.ok()) << kept.status();
  const std::string killed_in = ReshardStateName(in_swap->state());
  // It resumes: when the stall budget ran out while no coordinator led, the
  // swap is undone (writes unpaused) and tried again, or it completes.
  auto r = WaitForReshardState(f, {"retention"}, absl::Seconds(120));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->new_generation(), 0u);
  ASSERT_TRUE(ReshardCall(f, "complete").ok());
  ASSERT_TRUE(WaitForReshardState(f, {"done"}).ok());
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  const WriterStats st = (*sc)->writer().stats();
  RecordChaosResult(
      etcd ? "HA.3" : "23",
      absl::StrCat("reshard 8->16, store traffic +200 ms RTT, ",
                   etcd ? "leader SIGKILL (3 coordinators, 3-member etcd)" : "coordinator SIGKILL",
                   " in ", killed_in, failover, ", swap stall ", r->stall_ms(), " ms"),
      *report, st);
  EXPECT_TRUE(report->ok()) << "seed " << ChaosSeed() << "\n" << report->Summary();
  if (etcd) {
    EXPECT_EQ(st.failed(), 0u) << DescribeWrites(st);
  }
}

TEST(ChaosReshardSwapKill, CoordinatorKilledBetweenFenceAndFlip) { RunSwapKill(false); }

TEST(ChaosHaReshardSwapKill, LeaderKilledBetweenFenceAndFlipAStandbyResumes) { RunSwapKill(true); }

TEST(ChaosReshardRollback, NodeDownDuringReverseDualWriteNothingLost) {
  TempDir tmp("chaos_reshard_rollback");
  auto sc = MoveScenario::Start(tmp.path(), ReshardFleet(/*proxied=*/false));
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  ASSERT_TRUE(StartReshard(f, ReshardTo(16)).ok());
  auto r = WaitForReshardState(f, {"retention"});
  ASSERT_TRUE(r.ok()) << r.status();
  // r2 holds shards of both generations: down, the retained generation misses
  // the reverse dual-write there (and the live one degrades to g0 in group g1's
  // place) until it comes back.
  const uint64_t acked_before = (*sc)->writer().stats().acked();
  ASSERT_TRUE(f.redis("r2").Kill().ok());
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(f.redis("r2").Restart().ok());
  const uint64_t acked_while_down = (*sc)->writer().stats().acked() - acked_before;
  EXPECT_GT(acked_while_down, 50u) << "too few writes while r2 was down";
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_TRUE(ReshardCall(f, "rollback").ok());
  auto back = WaitForReshardState(f, {"rolled_back"}, absl::Seconds(120));
  ASSERT_TRUE(back.ok()) << back.status();
  auto left = EntriesOfGeneration(f, "products", back->new_generation(), 16);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, 0u);
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  RecordChaosResult("27",
                    absl::StrCat("reshard 8->16, r2 SIGKILLed (AOF) 2 s in retention, ",
                                 acked_while_down, " writes acked meanwhile, then rollback"),
                    *report, (*sc)->writer().stats());
  EXPECT_TRUE(report->ok()) << "seed " << ChaosSeed() << "\n" << report->Summary();
}

}  // namespace
}  // namespace miroir::testing
