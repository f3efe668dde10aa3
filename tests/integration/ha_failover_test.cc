// The data plane through a coordinator failover on etcd (DESIGN §9, §9a, §10;
// issue 18): three real coordinators on real etcd, real workers and redis
// nodes, and the test writer writing all along. A failover that completes
// within worker_lease_ttl fails no client write, a plan running through it
// finishes, a deposed leader commits nothing, and the promise of §4 holds on
// the nodes after each.
//
// Config: worker_lease_ttl 10s, etcd lease_ttl 2s (2 x 2 s + 3.3 s < 10 s).
// "Failed client writes" are everything the writer did not get acknowledged:
// unknown outcomes (per-item UNAVAILABLE, DEADLINE_EXCEEDED, a broken stream),
// broken streams, and every per-item error code.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "chaos/chaos_util.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

constexpr absl::Duration kWorkerLease = absl::Seconds(10);  // EtcdCoordinatorConfig()
constexpr int kKeys = 1000;
// A throttle for the copy after the failure: a plan is throttled to keep its
// moves copying across it, but the throttle also paces a cutover's final delta
// (up to catch_up_threshold = 200 documents), which must fit max_write_stall (2 s)
// or the writes held by the cutover fail.
constexpr int64_t kFastCopy = 10000;

FleetOptions HaOptions(int etcd_members) {
  FleetOptions o;
  o.group_sizes = {2, 2};
  o.indexes = {{"products", 8, 1}};
  o.workers = 2;
  o.etcd_coordinators = 3;
  o.etcd_members = etcd_members;
  o.coordinator_config = EtcdCoordinatorConfig();
  return o;
}

// Items acknowledged OK in the batches sent in [from, to).
uint64_t AckedBetween(const WriterStats& st, absl::Time from, absl::Time to) {
  const int64_t a = absl::ToUnixMillis(from);
  const int64_t b = absl::ToUnixMillis(to);
  uint64_t n = 0;
  for (size_t i = 0; i < st.batch_sent_ms.size(); ++i) {
    if (st.batch_sent_ms[i] >= a && st.batch_sent_ms[i] < b) n += st.batch_acked_items[i];
  }
  return n;
}

class HaFailover : public ::testing::Test {
 protected:
  // Starts the fleet and a writer that loads every key, then keeps writing.
  void StartFleetAndWriter(int etcd_members = 1) {
    auto f = Fleet::Start(tmp_.path(), HaOptions(etcd_members));
    ASSERT_TRUE(f.ok()) << f.status();
    fleet_ = std::move(*f);
    WriterOptions wo = fleet_->WriterOptionsFor();
    wo.keys = kKeys;
    wo.load_first = true;
    wo.ops_per_second = 300;
    wo.streams = 4;
    wo.batch_size = 8;
    wo.max_duration = absl::Seconds(90);  // stopped by the test
    writer_ = std::make_unique<TestWriter>(wo);
    ASSERT_TRUE(writer_->Start().ok());
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (writer_->stats().acked() < static_cast<uint64_t>(kKeys)) {
      ASSERT_LT(absl::Now(), deadline)
          << "load not acknowledged: " << DescribeWrites(writer_->stats());
      ASSERT_EQ(writer_->stats().failed(), 0u) << DescribeWrites(writer_->stats());
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // The leader's status; fails the test when it does not answer.
  pb::GetStatusResponse LeaderStatus() {
    auto st = fleet_->Status();
    EXPECT_TRUE(st.ok()) << st.status();
    return st.ok() ? *st : pb::GetStatusResponse();
  }

  // Waits for a new leader (not `old`) within the worker lease: the premise of
  // §9a (a failover that fits the lease). Returns its index, -1 on failure.
  int WaitForNewLeader(int old, absl::Time since) {
    auto next = fleet_->WaitForLeader(kWorkerLease, old);
    EXPECT_TRUE(next.ok()) << "the failover did not fit the worker lease: " << next.status();
    if (!next.ok()) return -1;
    EXPECT_NE(*next, old);
    std::cerr << "[ha] coordinator" << old << " -> coordinator" << *next << " leads after "
              << absl::FormatDuration(absl::Now() - since) << "\n";
    return *next;
  }

  // Stops the writer and checks: no client write failed, and the promise. A
  // chaos scenario (DESIGN §10) records its row (chaos_util.h) as `scenario`.
  void StopWriterAndCheck(const std::string& scenario = "", const std::string& config = "") {
    writer_->Stop();
    writer_->Wait();
    const WriterStats st = writer_->stats();
    std::cerr << "[ha] writes: " << DescribeWrites(st) << "\n";
    EXPECT_EQ(st.unknown, 0u) << DescribeWrites(st);
    EXPECT_EQ(st.stream_failures, 0u) << DescribeWrites(st);
    EXPECT_TRUE(st.error_codes.empty()) << DescribeWrites(st);
    EXPECT_GT(st.acked(), static_cast<uint64_t>(kKeys));
    auto report = CheckPromise(writer_->records(), fleet_->CheckOptionsFor());
    ASSERT_TRUE(report.ok()) << report.status();
    if (!scenario.empty()) RecordChaosResult(scenario, config, *report, st);
    EXPECT_TRUE(report->ok()) << report->Summary();
    EXPECT_GT(report->keys_checked, 0u);
  }

  // Sets the plan's schedule window (when given) and copy throttle (when > 0)
  // through the leader (Fleet::UpdatePlan follows a leader change).
  void UpdatePlan(uint64_t id, std::optional<std::string> window, int64_t throttle = 0) {
    pb::UpdatePlanRequest req;
    req.set_id(id);
    if (window.has_value()) req.set_schedule_window(*window);
    if (throttle > 0) req.set_throttle_docs_per_s(throttle);
    auto s = fleet_->UpdatePlan(req);
    EXPECT_TRUE(s.ok()) << "UpdatePlan: " << s.status();
  }

  TempDir tmp_{"ha-failover"};
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<TestWriter> writer_;
};

bool AnyMoveIn(const pb::Plan& plan, std::initializer_list<pb::MoveState> states) {
  for (const auto& m : plan.moves()) {
    for (pb::MoveState s : states) {
      if (m.state() == s) return true;
    }
  }
  return false;
}

// Steady writes, the leader SIGKILLed with no plan running: a standby takes
// over, the workers follow it and renew their leases there, and no write fails.
TEST_F(HaFailover, LeaderKilledUnderWritesFailsNoWrite) {
  ASSERT_NO_FATAL_FAILURE(StartFleetAndWriter());
  const int64_t term_before = LeaderStatus().term();
  absl::SleepFor(absl::Seconds(3));  // a window of steady writes before the kill

  const absl::Time killed_at = absl::Now();
  auto old = fleet_->KillLeader();
  ASSERT_TRUE(old.ok()) << old.status();
  const int next = WaitForNewLeader(*old, killed_at);
  ASSERT_GE(next, 0);
  EXPECT_GT(LeaderStatus().term(), term_before);
  // Both workers registered with the new leader and acked its epoch.
  ASSERT_TRUE(fleet_->WaitForWorkers(2, kWorkerLease).ok()) << fleet_->coordinator()->LogTail();

  // Keep writing past one whole worker lease after the kill: a lease the dead
  // leader granted has run out by then, so every write in the last window rides
  // on a lease the new leader renewed.
  const absl::Time after_from = killed_at + kWorkerLease + absl::Milliseconds(500);
  const absl::Time after_to = after_from + absl::Seconds(3);
  absl::SleepFor(after_to - absl::Now() + absl::Milliseconds(200));
  const WriterStats st = writer_->stats();
  const uint64_t before = AckedBetween(st, killed_at - absl::Seconds(3), killed_at);
  const uint64_t after = AckedBetween(st, after_from, after_to);
  std::cerr << "[ha] acked in the 3 s before the kill: " << before
            << ", in 3 s from one lease after it: " << after << "\n";
  ASSERT_GT(before, 0u);
  // The writer is rate-limited: the same rate before and after (ratio ~1).
  EXPECT_GE(static_cast<double>(after) / static_cast<double>(before), 0.7)
      << "before=" << before << " after=" << after;

  StopWriterAndCheck();
}

// An add-node plan copying (throttled) when the leader is SIGKILLed: the new
// leader resumes it to DONE. No move can be in a cutover pause at the kill (the
// plan's schedule window is closed until the new leader opens it), so no write
// may fail.
TEST_F(HaFailover, LeaderKilledMidPlanThePlanFinishes) {
  ASSERT_NO_FATAL_FAILURE(StartFleetAndWriter());
  auto addr = fleet_->AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(20);  // ~125 documents a shard: seconds of copying
  auto plan = fleet_->CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // A plan is refused outside its window, so the window is closed right after:
  // the moves copy and catch up, then wait in catching_up instead of pausing.
  UpdatePlan(plan->id(), WindowAhead(absl::Hours(2)));
  auto copying = fleet_->WaitForMoveState(plan->id(), pb::MOVE_COPYING, absl::Seconds(30));
  ASSERT_TRUE(copying.ok()) << copying.status();
  ASSERT_FALSE(AnyMoveIn(*copying, {pb::MOVE_PAUSED, pb::MOVE_FINAL_DELTA}))
      << DescribePlan(*copying);
  std::cerr << "[ha] at the kill:\n" << DescribePlan(*copying) << "\n";

  const absl::Time killed_at = absl::Now();
  auto old = fleet_->KillLeader();
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_GE(WaitForNewLeader(*old, killed_at), 0);
  auto resumed = fleet_->GetPlan(plan->id());
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_FALSE(PlanEnded(resumed->plan().state())) << DescribePlan(resumed->plan());
  // The new leader opens the window (its config's: any time) and lifts the
  // throttle, which also paces a cutover's final delta (a hundred documents at
  // 20/s would outlast max_write_stall).
  UpdatePlan(plan->id(), "", kFastCopy);

  auto end = fleet_->WaitForPlanEnd(plan->id(), absl::Seconds(50));
  ASSERT_TRUE(end.ok()) << end.status();
  std::cerr << "[ha] plan done " << absl::FormatDuration(absl::Now() - killed_at)
            << " after the kill\n";
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  StopWriterAndCheck();
}

// The leader SIGSTOPped under writes: a standby takes over and the workers
// follow it while the old one is still frozen (past a whole worker lease), a
// plan is created and committed through the new leader; the old one, resumed,
// exits 3 without committing anything; the plan finishes under the new leader.
TEST_F(HaFailover, StoppedLeaderIsDeposedAndCommitsNothing) {
  ASSERT_NO_FATAL_FAILURE(StartFleetAndWriter());
  const absl::Time stopped_at = absl::Now();
  auto old = fleet_->StopLeader();
  ASSERT_TRUE(old.ok()) << old.status();
  const int next = WaitForNewLeader(*old, stopped_at);
  ASSERT_GE(next, 0);
  const pb::GetStatusResponse st_new = LeaderStatus();
  // The workers leave the frozen leader for the new one within their lease.
  ASSERT_TRUE(fleet_->WaitForWorkers(2, kWorkerLease).ok())
      << "the workers did not follow the new leader while the old one is stopped";
  auto addr = fleet_->AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  auto plan = fleet_->CreatePlan(AddNodeRequest("r9", "g0", *addr));
  ASSERT_TRUE(plan.ok()) << plan.status();
  // Frozen past one whole worker lease: writes go on on the new leader's leases.
  const absl::Time resume_at = stopped_at + kWorkerLease + absl::Seconds(1);
  if (absl::Now() < resume_at) absl::SleepFor(resume_at - absl::Now());

  const size_t log_at_cont = fleet_->coordinator(*old)->ReadLog().size();
  ASSERT_TRUE(fleet_->ContCoordinator(*old).ok());
  auto code = fleet_->coordinator(*old)->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << "the deposed leader kept running: "
                         << fleet_->coordinator(*old)->LogTail();
  EXPECT_EQ(*code, 3);
  const std::string after_cont = fleet_->coordinator(*old)->ReadLog().substr(log_at_cont);
  EXPECT_TRUE(DeposedLeaderCommittedNothing(after_cont).ok())
      << DeposedLeaderCommittedNothing(after_cont);
  // The new leader leads on, in the same term, with the plan it committed.
  auto still = fleet_->WaitForLeader(absl::Seconds(5));
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(*still, next);
  const pb::GetStatusResponse st_after = LeaderStatus();
  EXPECT_EQ(st_after.term(), st_new.term());
  EXPECT_GE(st_after.epoch(), st_new.epoch());

  auto end = fleet_->WaitForPlanEnd(plan->id(), absl::Seconds(50));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  // Still the same term after the whole plan: a commit of the old leader that
  // slipped through would have changed buckets under the new one, which then
  // resigns at its next commit there (EtcdStateStore::set_on_diverged).
  EXPECT_EQ(LeaderStatus().term(), st_new.term());
  StopWriterAndCheck();
}

// A 3-member etcd loses its raft leader (SIGKILL) while an add-node plan is
// copying: etcd keeps its quorum, the plan finishes, no write fails.
TEST_F(HaFailover, OneEtcdMemberKilledMidPlan) {
  ASSERT_NO_FATAL_FAILURE(StartFleetAndWriter(/*etcd_members=*/3));
  auto addr = fleet_->AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(40);
  auto plan = fleet_->CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto copying = fleet_->WaitForMoveState(plan->id(), pb::MOVE_COPYING, absl::Seconds(30));
  ASSERT_TRUE(copying.ok()) << copying.status();

  // The member that is etcd's raft leader, as the coordinator sees it.
  const pb::GetStatusResponse st = LeaderStatus();
  int victim = -1;
  for (const auto& e : st.etcd()) {
    if (!e.is_leader()) continue;
    for (int i = 0; i < fleet_->etcd()->size(); ++i) {
      if (fleet_->etcd()->endpoint(i) == e.endpoint()) victim = i;
    }
  }
  ASSERT_GE(victim, 0) << st.ShortDebugString();
  const int leader_before = fleet_->leader();
  auto at_kill = fleet_->GetPlan(plan->id());
  ASSERT_TRUE(at_kill.ok()) << at_kill.status();
  ASSERT_TRUE(AnyMoveIn(at_kill->plan(), {pb::MOVE_COPYING})) << DescribePlan(at_kill->plan());
  std::cerr << "[ha] killing etcd member " << victim << " (raft leader) at "
            << fleet_->etcd()->endpoint(victim) << "; the plan:\n"
            << DescribePlan(at_kill->plan()) << "\n";
  ASSERT_TRUE(fleet_->etcd()->Kill(victim).ok());
  UpdatePlan(plan->id(), std::nullopt, kFastCopy);

  auto end = fleet_->WaitForPlanEnd(plan->id(), absl::Seconds(50));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  // Two members answer for the cluster. The coordinator may have kept leading,
  // or resigned when a commit whose answer etcd's election lost was applied
  // (EtcdStateStore::set_on_diverged): either way no write may fail.
  const pb::GetStatusResponse after = LeaderStatus();
  std::cerr << "[ha] coordinator" << leader_before << " led at term " << st.term()
            << "; after the plan coordinator" << fleet_->leader() << " leads at term "
            << after.term() << "\n";
  int healthy = 0;
  for (const auto& e : after.etcd()) healthy += e.healthy() ? 1 : 0;
  EXPECT_EQ(healthy, 2) << after.ShortDebugString();
  StopWriterAndCheck("HA.4", absl::StrCat("etcd's raft leader SIGKILLed mid-copy (3 coordinators, "
                                          "3-member etcd), plan DONE, coordinator leader ",
                                          fleet_->leader() == leader_before ? "kept" : "changed"));
}

}  // namespace
}  // namespace miroir::testing
