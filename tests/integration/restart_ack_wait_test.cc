// After a coordinator restart, "every live worker acked epoch E" is not trusted
// until one worker lease TTL plus the allowed clock drift has passed (DESIGN §6
// "Coordinator restart"; `acks_ready` in coordinator/plan_runner.cc): right
// after the restart the registry is empty, so AllLiveAcked is vacuously true,
// while a worker that has not re-registered yet still writes on its old view
// until its lease runs out.
//
// Forced on real processes: an add-group plan that skips the delta pass (AE on),
// so what the backfill of the new group's node r9 misses is never copied by a
// catch-up or a reconciliation. Worker S reaches the coordinator through a
// proxy, takes no task, and keeps writing fresh keys through the whole test.
// The proxy is cut before the plan: S never acks the dual-write epoch E1, so
// every move waits in dual_write (asserted) while S, its lease still valid,
// writes at E0 to the old group only. The coordinator is then SIGKILLed and
// restarted. S can reach the new process only once its lease has lapsed (it
// refuses writes: seen by its writer), then the proxy passes again.
//   With the wait, the moves leave dual_write only after S's lease lapsed:
//   the backfill starts after S's last E0 write, every later write is
//   dual-written, and r9 ends holding every acknowledged write.
//   Without it (`acks_ready` forced true in PlanRunner::StepPlans, tried while
//   writing this test) the restarted coordinator moved every move to copying
//   at its first tick, about 5 s before S's last acknowledged E0 write: every
//   dual_write -> copying event came before it ("move 3 left dual_write 7051 ms
//   before the last write S acknowledged on its old view"), and the writes S
//   made behind the backfill's cursor never reached r9: "lost=128
//   resurrected=4" (r9 "lost put ... (absent)", "holds older version", and
//   missed deletes). When S came back only after the grace, the recovery
//   passes for a worker that "did not come back after the restart" repaired r9
//   (lost=0) and only the event order showed it: hence the restart a few
//   seconds into S's lease below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "chaos/chaos_util.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/tcp_proxy.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

int PortOf(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

// Unix ms of the last acknowledgement the writer received no later than
// `until_ms` (0: none).
int64_t LastAckMs(const WriterStats& s, int64_t until_ms) {
  int64_t last = 0;
  for (size_t i = 0; i < s.batch_sent_ms.size(); ++i) {
    if (s.batch_acked_items[i] == 0) continue;
    const int64_t acked_ms = s.batch_sent_ms[i] + s.batch_latencies_us[i] / 1000;
    if (acked_ms <= until_ms) last = std::max(last, acked_ms);
  }
  return last;
}

uint64_t Unavailable(const WriterStats& s) {
  auto it = s.error_codes.find(static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  return it == s.error_codes.end() ? 0 : it->second;
}

TEST(RestartAckWait, MovesLeaveDualWriteOnlyAfterAnUnregisteredWorkersLeaseLapsed) {
  TempDir tmp("restart_ack_wait");
  FleetOptions fo;
  fo.group_sizes = {1};
  fo.indexes = {{"products", 8, 1}};
  fo.workers = 2;
  // Long enough for the kill and the restart to fit inside S's lease.
  fo.coordinator_config["worker_lease_ttl"] = "8s";
  fo.coordinator_config["anti_entropy"]["enabled"] = true;  // allows skipping the delta
  fo.per_worker_config[2] = "max_tasks: 0\n";               // S (added below) takes no task
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  auto coord_proxy = TcpProxy::Start(PortOf(f.coordinator_address()));
  ASSERT_TRUE(coord_proxy.ok()) << coord_proxy.status();
  auto s_index = f.AddWorker(0, (*coord_proxy)->address());
  ASSERT_TRUE(s_index.ok()) << s_index.status();
  ASSERT_EQ(*s_index, 2);
  ASSERT_TRUE(f.WaitForWorkers(3).ok());

  // Documents for the backfill to copy (through worker 0).
  WriterOptions load = f.WriterOptionsFor();
  load.worker_addresses = {f.worker_address(0)};
  load.keys = 800;
  load.load_first = true;
  load.load_only = true;
  load.batch_size = 50;
  load.max_duration = absl::Seconds(60);
  TestWriter loader(load);
  ASSERT_TRUE(loader.Run().ok());
  ASSERT_EQ(loader.stats().acked_puts, 800u);

  // S's writer: fresh keys, small batches, all the time.
  WriterOptions sw = f.WriterOptionsFor();
  sw.worker_addresses = {f.worker_address(*s_index)};
  sw.key_prefix = "s:";
  sw.keys = 1200;
  sw.delete_fraction = 0.1;
  sw.streams = 2;
  sw.batch_size = 4;
  sw.ops_per_second = 150;
  sw.batch_timeout = absl::Seconds(3);
  sw.max_duration = absl::Seconds(60);
  sw.seed = ChaosSeed();
  TestWriter s_writer(sw);
  ASSERT_TRUE(s_writer.Start().ok());
  absl::SleepFor(absl::Milliseconds(300));

  // S loses the coordinator; its lease (8 s from its last answered heartbeat)
  // keeps it writing on its view.
  (*coord_proxy)->Cut();
  auto addr = f.AddNodeProcess("r9", "g1");
  ASSERT_TRUE(addr.ok()) << addr.status();
  pb::CreatePlanRequest req = AddGroupRequest("g1", {{"r9", *addr}});
  req.set_skip_delta_pass(true);
  req.set_throttle_docs_per_s(40);  // ~100 documents a shard: seconds of copying
  auto plan = f.CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_GT(plan->moves_size(), 0);

  // Every move waits in dual_write for S's ack of E1 (S is still live here).
  bool all_dual = false;
  for (int i = 0; i < 100 && !all_dual; ++i) {
    auto p = f.GetPlan(plan->id());
    ASSERT_TRUE(p.ok()) << p.status();
    all_dual = true;
    for (const auto& m : p->plan().moves()) {
      ASSERT_LE(m.state(), pb::MOVE_DUAL_WRITE) << "a move left dual_write before S acked E1\n"
                                                << DescribePlan(p->plan());
      all_dual = all_dual && m.state() == pb::MOVE_DUAL_WRITE;
    }
    if (!all_dual) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(all_dual) << "the moves did not reach dual_write";
  // Restart a few seconds into S's lease (its last answered heartbeat is at most
  // a third of the TTL before the cut): S then lapses, and re-registers, before
  // the restarted coordinator's grace ends, so no recovery pass scheduled for a
  // worker that "did not come back" repairs r9 behind the test's back.
  absl::SleepFor(absl::Milliseconds(2500));
  auto at_kill = f.GetPlan(plan->id());
  ASSERT_TRUE(at_kill.ok()) << at_kill.status();
  for (const auto& m : at_kill->plan().moves()) {
    ASSERT_EQ(m.state(), pb::MOVE_DUAL_WRITE) << DescribePlan(at_kill->plan());
  }

  const int64_t restart_ms = absl::ToUnixMillis(absl::Now());
  ASSERT_TRUE(f.RestartCoordinator().ok());  // SIGKILL, then the same data dir

  // S reaches the new coordinator only after its lease lapsed (its writes are
  // refused from then on).
  bool lapsed = false;
  for (int i = 0; i < 400 && !lapsed; ++i) {
    lapsed = Unavailable(s_writer.stats()) > 0;
    if (!lapsed) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(lapsed) << "S never refused a write: its lease did not lapse";
  // Every write S acknowledged until now was on its old view (E0).
  const int64_t old_view_until_ms = absl::ToUnixMillis(absl::Now());
  (*coord_proxy)->Pass();
  ASSERT_TRUE(f.WaitForWorkers(3, absl::Seconds(30)).ok()) << "S did not come back";

  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(90));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  s_writer.Stop();
  s_writer.Wait();
  const WriterStats ss = s_writer.stats();
  const int64_t s_last_ack_ms = LastAckMs(ss, old_view_until_ms);
  // The bad interleaving was possible: S acknowledged writes on its old view
  // after the restart.
  ASSERT_GT(s_last_ack_ms, restart_ms)
      << "S acknowledged nothing on its old view after the restart";
  // And S wrote again once it was back (on the current view).
  EXPECT_GT(LastAckMs(ss, INT64_MAX), old_view_until_ms) << "S never wrote again";

  // Every move left dual_write after S's last acknowledged write at E0.
  auto history = f.GetPlan(plan->id());
  ASSERT_TRUE(history.ok()) << history.status();
  int to_copying = 0;
  for (const auto& e : history->history()) {
    if (e.from() != "dual_write" || e.to() != "copying") continue;
    ++to_copying;
    EXPECT_GT(e.time_ms(), s_last_ack_ms)
        << "move " << e.move_id() << " left dual_write " << (s_last_ack_ms - e.time_ms())
        << " ms before the last write S acknowledged on its old view: " << e.reason();
  }
  EXPECT_EQ(to_copying, end->moves_size());

  std::map<std::string, KeyRecord> expected = loader.records();
  for (const auto& [k, rec] : s_writer.records()) expected[k] = rec;
  auto report = CheckPromise(expected, f.CheckOptionsFor());
  ASSERT_TRUE(report.ok()) << report.status();
  std::cout << "S: " << ss.acked() << " acked, " << ss.unknown
            << " unknown, last ack on its old view " << (s_last_ack_ms - restart_ms)
            << " ms after the restart; check: " << report->Summary() << "\n";
  RecordChaosResult(
      "16.8",
      absl::StrCat("restart wait: worker S cut from the coordinator, its lease 8 s; "
                   "coordinator SIGKILLed in dual_write of a skipped-delta add-group; ",
                   "S acked on its old view until ", s_last_ack_ms - restart_ms,
                   " ms after the restart; plan ", pb::PlanState_Name(end->state())),
      *report, ss);
  EXPECT_EQ(report->lost, 0u) << report->Summary();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

}  // namespace
}  // namespace miroir::testing
