// Issue 18's chaos scenarios on the etcd control plane (DESIGN §9, §9a, §10):
// three real coordinators on a real 3-member etcd, real workers and redis nodes,
// the one test writer writing all along.
//
//   HA.1  the leader SIGKILLed in each move state; a standby takes over, the
//         killed one is started again (it campaigns as a standby);
//   HA.2  the leader SIGSTOPped in each move state until the new leader
//         committed (a plan update through it) and one whole worker lease
//         passed, then SIGCONT: it exits 3 and its log holds no commit.
//
// After each: the plan is DONE, the promise of §4 holds on the nodes, and no
// client write failed — the failover fits inside the worker lease, and a move
// paused at the fault holds its writes (bounded by max_write_stall, 30 s here)
// until the new leader, which acts on acks one worker lease after taking over,
// finishes or undoes the cutover (HoldWritesAcrossFailover). Each records a row (chaos_util.h) with
// the failover time: the fault to a new leader answering.
#ifndef MIROIR_TESTS_CHAOS_CHAOS_HA_H_
#define MIROIR_TESTS_CHAOS_CHAOS_HA_H_

#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "chaos/chaos_util.h"
#include "chaos/move_state_hold.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/temp_dir.h"

namespace miroir::testing {

// EtcdCoordinatorConfig's worker lease (etcd lease_ttl 2 s: 2 x 2 s + 3.3 s < 10 s).
constexpr absl::Duration kHaWorkerLease = absl::Seconds(10);

// Three coordinators on a 3-member etcd.
inline void UseEtcdControlPlane(ScenarioOptions* so) {
  so->fleet.etcd_coordinators = 3;
  so->fleet.etcd_members = 3;
  so->fleet.coordinator_config = EtcdCoordinatorConfig();
}

// A pause may span the failover and the new leader's wait of one worker lease
// before it acts on acks (and the holds stretch a cutover to seconds): a stall
// budget covering both, workers whose per-batch write deadline does not cut a
// held write before its pause deadline, and a writer that waits longer still
// before it calls a batch's outcome unknown. With these, DESIGN §9a promises no
// failed write.
inline void HoldWritesAcrossFailover(ScenarioOptions* so) {
  so->fleet.coordinator_config["migration"]["max_write_stall"] = "30s";
  for (int i = 0; i < so->fleet.workers; ++i)
    so->fleet.per_worker_config[i] = "write_deadline: 40s\n";
  so->batch_timeout = absl::Seconds(45);
}

enum class LeaderFault { kKill, kStop };

inline std::string LeaderFaultName(LeaderFault fault) {
  return fault == LeaderFault::kKill ? "SIGKILL" : "SIGSTOP";
}

inline void RunLeaderFaultInMoveState(miroir::v1::MoveState at, LeaderFault fault) {
  namespace pb = ::miroir::v1;
  TempDir tmp(absl::StrCat("chaos_ha_", LeaderFaultName(fault), "_", pb::MoveState_Name(at)));
  ScenarioOptions so;
  so.seed = ChaosSeed();
  UseEtcdControlPlane(&so);
  PrepareMoveStateHold(at, &so);
  HoldWritesAcrossFailover(&so);
  so.max_duration = absl::Seconds(240);  // stopped by StopAndCheck
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto plan = PlanHeldIn(**sc, at);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto before = f.Status();
  ASSERT_TRUE(before.ok()) << before.status();

  const absl::Time fault_at = absl::Now();
  auto old = fault == LeaderFault::kKill ? f.KillLeader() : f.StopLeader();
  ASSERT_TRUE(old.ok()) << old.status();
  ReleaseMoveStateHold(f);
  auto next = f.WaitForLeader(kHaWorkerLease, *old);
  ASSERT_TRUE(next.ok()) << "the failover did not fit the worker lease: " << next.status();
  const absl::Duration failover = absl::Now() - fault_at;
  std::cerr << "[ha] leader " << LeaderFaultName(fault) << " at " << pb::MoveState_Name(at)
            << ": coordinator" << *old << " -> coordinator" << *next << " in "
            << absl::FormatDuration(failover) << "\n";
  auto after = f.Status();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(after->term(), before->term());

  // The new leader commits: the plan's copy throttle lifted (it paces the
  // catch-up too, which would not converge under the writer's rate).
  pb::UpdatePlanRequest lift;
  lift.set_id(plan->id());
  lift.set_throttle_docs_per_s(10000);
  auto updated = f.UpdatePlan(lift);
  ASSERT_TRUE(updated.ok()) << "no commit through the new leader: " << updated.status();
  if (fault == LeaderFault::kKill) {
    // Replaced as a supervisor would: it campaigns and stands by.
    ASSERT_TRUE(f.RestartCoordinator(*old).ok());
  } else {
    // The old one stays frozen past one whole worker lease: writes go on on the
    // new leader's leases. Resumed, it must find its leadership gone and exit.
    const absl::Time resume_at = fault_at + kHaWorkerLease + absl::Seconds(1);
    if (absl::Now() < resume_at) absl::SleepFor(resume_at - absl::Now());
    const size_t log_at_cont = f.coordinator(*old)->ReadLog().size();
    ASSERT_TRUE(f.ContCoordinator(*old).ok());
    auto code = f.coordinator(*old)->Wait(absl::Seconds(10));
    ASSERT_TRUE(code.ok()) << "the deposed leader kept running: " << f.coordinator(*old)->LogTail();
    EXPECT_EQ(*code, 3);
    const absl::Status nothing =
        DeposedLeaderCommittedNothing(f.coordinator(*old)->ReadLog().substr(log_at_cont));
    EXPECT_TRUE(nothing.ok()) << nothing;
    ASSERT_TRUE(f.WaitForLeader(absl::Seconds(5)).ok());
    EXPECT_EQ(f.leader(), *next) << "the new leader lost its leadership to the resumed one";
  }

  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(240));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  const WriterStats st = (*sc)->writer().stats();
  RecordChaosResult(
      fault == LeaderFault::kKill ? "HA.1" : "HA.2",
      absl::StrFormat("leader %s at %s (3 coordinators, 3-member etcd), new leader "
                      "after %.1f s, plan %s",
                      LeaderFaultName(fault), pb::MoveState_Name(at),
                      absl::ToDoubleSeconds(failover), pb::PlanState_Name(end->state())),
      *report, st);
  EXPECT_TRUE(report->ok()) << "seed " << ChaosSeed() << "\n" << report->Summary();
  EXPECT_EQ(st.failed(), 0u) << DescribeWrites(st);
}

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_CHAOS_CHAOS_HA_H_
