// Issue 18's chaos scenarios on the etcd control plane (chaos_ha.h): the leader
// SIGKILLed and SIGSTOPped in every move state (HA.1, HA.2), and etcd's quorum
// lost for 30 s mid-plan (HA.5). HA.3 (the leader SIGKILLed in a reshard swap)
// is in chaos_reshard_test.cc, HA.4 (one etcd member SIGKILLed) is
// HaFailover.OneEtcdMemberKilledMidPlan.
#include "chaos/chaos_ha.h"

#include <gtest/gtest.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "chaos/chaos_util.h"
#include "harness/etcd_cluster.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/temp_dir.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

std::string StateName(const ::testing::TestParamInfo<pb::MoveState>& i) {
  return pb::MoveState_Name(i.param);
}

// The CI subset: the states where a failover meets work in flight (a copy, a
// pause holding writes, a final delta, an epoch waiting for acks); the other
// states are in tests/long/chaos_ha_long_test.cc, and run_matrix.sh runs all.
class ChaosHaLeaderKill : public ::testing::TestWithParam<pb::MoveState> {};

TEST_P(ChaosHaLeaderKill, StandbyTakesOverThePlanFinishesNoWriteFails) {
  RunLeaderFaultInMoveState(GetParam(), LeaderFault::kKill);
}

INSTANTIATE_TEST_SUITE_P(Ci, ChaosHaLeaderKill,
                         ::testing::Values(pb::MOVE_COPYING, pb::MOVE_PAUSED, pb::MOVE_FINAL_DELTA,
                                           pb::MOVE_ACTIVE),
                         StateName);

class ChaosHaLeaderStop : public ::testing::TestWithParam<pb::MoveState> {};

TEST_P(ChaosHaLeaderStop, DeposedLeaderResumedCommitsNothingNoWriteFails) {
  RunLeaderFaultInMoveState(GetParam(), LeaderFault::kStop);
}

INSTANTIATE_TEST_SUITE_P(Ci, ChaosHaLeaderStop, ::testing::Values(pb::MOVE_PAUSED), StateName);

// ---- HA.5: etcd's quorum lost for 30 s mid-plan ----
//
// Two of three etcd members SIGSTOPped while an add-node plan copies. The leader
// cannot renew its etcd lease and exits 3 (a supervisor restarts it: the test
// does); no coordinator can commit, so a mutation is refused with an error that
// says why. Past the worker lease the workers refuse writes (DESIGN §9a): those
// writes fail, none is acknowledged and lost. With the members resumed a
// coordinator leads again, the plan resumes to DONE, writes are acknowledged
// again, and the promise holds.
TEST(ChaosHaEtcdQuorum, LostFor30sMutationsRefusedThePlanResumes) {
  TempDir tmp("chaos_ha_quorum");
  ScenarioOptions so;
  so.seed = ChaosSeed();
  UseEtcdControlPlane(&so);
  so.fleet.group_sizes = {2};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", 4, 2}};
  so.keys = 400;
  so.write_rate = 300;
  so.max_duration = absl::Seconds(240);  // stopped by StopAndCheck
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(20);  // ~100 documents a shard: copying all along
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(f.WaitForMoveState(plan->id(), pb::MOVE_COPYING, absl::Seconds(60)).ok());

  EtcdCluster& etcd = *f.etcd();
  const absl::Time lost_at = absl::Now();
  for (int i : {1, 2}) ASSERT_TRUE(etcd.process(i)->Stop().ok());
  // A mutation while no quorum answers: refused, naming the cause. Asked until
  // the refusal names etcd's state (the leader's commit times out, or it is
  // gone and the standbys report the endpoints), within the outage.
  const std::string pid = absl::StrCat(plan->id());
  std::string refusal;
  while (absl::Now() < lost_at + absl::Seconds(25) && !absl::StrContains(refusal, "etcd")) {
    auto r = f.Ctl({"plan", "pause", pid}, absl::Seconds(20));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_NE(r->exit_code, 0) << "a plan was paused without an etcd quorum: " << r->stdout_text;
    refusal = r->stderr_text;
    absl::SleepFor(absl::Milliseconds(500));
  }
  std::cerr << "[ha] mutation without a quorum: " << refusal;
  for (int i = 0; i < f.coordinator_count(); ++i) {
    std::cerr << "[ha] coordinator" << i << " " << f.coordinator_address(i)
              << (f.coordinator(i)->Running() ? " running" : " exited") << "\n";
  }
  if (auto st = f.Ctl({"status"}, absl::Seconds(20)); st.ok()) {
    std::cerr << "[ha] status without a quorum (exit " << st->exit_code << "):\n"
              << st->stdout_text << st->stderr_text;
  }
  EXPECT_TRUE(absl::StrContains(refusal, "etcd")) << refusal;
  const absl::Time give_back = lost_at + absl::Seconds(30);
  if (absl::Now() < give_back) absl::SleepFor(give_back - absl::Now());
  for (int i : {1, 2}) ASSERT_TRUE(etcd.process(i)->Cont().ok());
  const absl::Time back_at = absl::Now();
  ASSERT_TRUE(etcd.WaitHealthy(absl::Seconds(30)).ok());
  // A coordinator that exited when its leadership lapsed is started again.
  int restarted = 0;
  for (int i = 0; i < f.coordinator_count(); ++i) {
    if (!f.coordinator(i)->Running()) {
      ASSERT_TRUE(f.RestartCoordinator(i).ok());
      ++restarted;
    }
  }
  auto leader = f.WaitForLeader(absl::Seconds(30));
  ASSERT_TRUE(leader.ok()) << leader.status();
  const absl::Duration to_leader = absl::Now() - back_at;
  const uint64_t acked_back = (*sc)->writer().stats().acked();
  pb::UpdatePlanRequest lift;
  lift.set_id(plan->id());
  lift.set_throttle_docs_per_s(10000);
  ASSERT_TRUE(f.UpdatePlan(lift).ok());
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(120));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  // Writes are acknowledged again once a leader grants leases.
  for (int i = 0; i < 200 && (*sc)->writer().stats().acked() < acked_back + 300; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GE((*sc)->writer().stats().acked(), acked_back + 300)
      << "writes not acknowledged after the quorum came back: "
      << DescribeWrites((*sc)->writer().stats());
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  const WriterStats st = (*sc)->writer().stats();
  std::cerr << "[ha] writes: " << DescribeWrites(st) << "\n";
  RecordChaosResult("HA.5",
                    absl::StrFormat("etcd quorum lost 30 s mid-copy (2 of 3 members SIGSTOPped; 3 "
                                    "coordinators, %d exited and restarted), a leader %.1f s after "
                                    "the quorum returned, plan %s; failed writes: refused past "
                                    "the worker lease",
                                    restarted, absl::ToDoubleSeconds(to_leader),
                                    pb::PlanState_Name(end->state())),
                    *report, st);
  EXPECT_TRUE(report->ok()) << "seed " << ChaosSeed() << "\n" << report->Summary();
}

}  // namespace
}  // namespace miroir::testing
