// A stale holder of a destructive task must not wipe what the move copied
// (DESIGN §6, "Every destructive store operation is fenced against stale
// holders"; issue 16, item 1).
//
// Worker A takes the PREPARE task of an add-node move; its store traffic to the
// joining node J (r9) is held by a proxy and A is SIGSTOPped, so its fence and
// wipe have not reached J. A's lease expires, the task is re-leased to worker B,
// and the move runs through dual-write and the backfill into catching_up while a
// writer keeps writing (through a third worker C that takes no task; the copy is
// throttled below the write rate, so the move stays in catching_up). Then the
// proxy lets A's traffic through and A is continued: its wipe reaches J after the
// copy, while the dual-writes land. RF 1 and one old owner: cleanup deletes the
// only other copy, so whatever the stale wipe removed from J is lost.
//
// Before the fix (the prepare task carried the dual-write epoch E1 itself and
// nothing raised J's fence above it) the stale wipe emptied J:
// J's copy of the moved shard went from 322 entries to 0 when A's run ended
// ("task 4 (TASK_PREPARE) complete"), and with the plan DONE the check found
// lost=170 and lost=171 (two runs; 600 keys, ~2,500 acknowledged writes) — every
// key of the moved shard not written again after the wipe.
#include <gtest/gtest.h>

#include <iostream>
#include <regex>

#include "absl/strings/str_cat.h"
#include "chaos/chaos_util.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"
#include "worker/stores/store_adapter.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

// Polls `pred` every 20 ms until it holds or `timeout` passes.
template <typename Pred>
bool WaitFor(Pred pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return pred();
}

// Whether GetStatus lists a live worker at `address`.
bool WorkerLive(Fleet& f, const std::string& address) {
  auto st = f.Status();
  if (!st.ok()) return false;
  for (const auto& w : st->workers()) {
    if (w.address() == address) return true;
  }
  return false;
}

// The state of the plan's only move, or MOVE_STATE_UNSPECIFIED.
pb::MoveState MoveStateOf(Fleet& f, uint64_t plan_id) {
  auto p = f.GetPlan(plan_id);
  if (!p.ok() || p->plan().moves_size() != 1) return pb::MOVE_STATE_UNSPECIFIED;
  return p->plan().moves(0).state();
}

// Entries (documents and tombstones) of one shard on one node: only a wipe or
// a purge makes this go down.
uint64_t Entries(StoreAdapter& store, const ShardKey& shard) {
  auto st = store.Stats(shard);
  return st.ok() ? st->documents + st->tombstones : 0;
}

TEST(MoveStaleHolder, StalePrepareHolderCannotWipeTheCopy) {
  TempDir tmp("stale");
  FleetOptions fo;
  fo.group_sizes = {1};
  fo.indexes = {{"products", 2, 1}};
  fo.workers = 3;
  fo.coordinator_config["migration"]["catch_up_threshold"] = 20;
  // C (worker 2) only serves the writer: it takes no task.
  fo.per_worker_config[2] = "max_tasks: 0\n";
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  auto addr = f.AddNodeProcess("r9", "g0", /*proxied=*/true);
  ASSERT_TRUE(addr.ok()) << addr.status();

  WriterOptions wo = f.WriterOptionsFor("products");
  wo.worker_addresses = {f.worker_address(2)};
  wo.keys = 600;
  wo.load_first = true;
  wo.ops_per_second = 200;
  wo.streams = 2;
  wo.batch_size = 8;
  wo.max_duration = absl::Seconds(150);
  wo.seed = ChaosSeed();
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return writer.stats().acked() >= 600; }, absl::Seconds(30)))
      << "load not acknowledged: " << writer.stats().acked();

  // Only A (worker 0) can take the prepare task: B is down, C takes none.
  ASSERT_TRUE(f.KillWorker(1).ok());
  ASSERT_TRUE(WaitFor([&] { return !WorkerLive(f, f.worker_address(1)); }, absl::Seconds(20)));
  TcpProxy& j = *f.node("r9").proxy;
  j.HoldPeer(f.worker(0)->pid());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  // Copies (backfill and catch-up passes) at 60 documents/s while the writer
  // changes about 100 documents/s of the moved shard: no pass gets under the
  // threshold (20), so the move stays in catching_up until the writer stops.
  req.set_throttle_docs_per_s(60);
  auto plan = f.CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->moves_size(), 1) << DescribePlan(*plan);
  const ShardKey shard{"products", plan->moves(0).generation(), plan->moves(0).shard()};

  // A runs the prepare task and its first command to J is held.
  const std::regex leased("task ([0-9]+) \\(TASK_PREPARE\\) lease 1 epoch ([0-9]+)");
  std::string prepare_id;
  uint64_t stale_epoch = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::smatch m;
        const std::string log = f.worker(0)->ReadLog();
        if (!std::regex_search(log, m, leased)) return false;
        prepare_id = m[1].str();
        stale_epoch = std::stoull(m[2].str());
        return j.peer_bytes_held() > 0;
      },
      absl::Seconds(20)))
      << "A did not start the prepare task behind the hold";
  ASSERT_TRUE(f.worker(0)->Stop().ok());
  ASSERT_TRUE(f.RestartWorker(1).ok());

  // A's lease expires; B takes the prepare over; the move dual-writes and copies.
  auto catching_up = f.WaitForMoveState(plan->id(), pb::MOVE_CATCHING_UP, absl::Seconds(60));
  ASSERT_TRUE(catching_up.ok()) << catching_up.status();
  {
    // B's lease carries an epoch committed after A's (DESIGN §6).
    std::smatch m;
    const std::string log = f.worker(1)->ReadLog();
    const std::regex released(
        absl::StrCat("task ", prepare_id, " \\(TASK_PREPARE\\) lease 2 epoch ([0-9]+)"));
    ASSERT_TRUE(std::regex_search(log, m, released)) << "B did not run the re-leased prepare";
    EXPECT_GT(std::stoull(m[1].str()), stale_epoch);
  }
  auto j_store = MakeStoreAdapter("redis", f.redis("r9").address(), StoreOptions{});
  ASSERT_TRUE(j_store.ok()) << j_store.status();
  // Dual-writes keep landing on J.
  const uint64_t seq_before = (*j_store)->CurrentSeq(shard)->seq;
  ASSERT_TRUE(
      WaitFor([&] { return (*j_store)->CurrentSeq(shard)->seq > seq_before; }, absl::Seconds(10)))
      << "no dual-write reached J";
  const uint64_t copied = Entries(**j_store, shard);
  ASSERT_GT(copied, 0u) << "the backfill copied nothing to J";

  // The stale holder resumes: its held command reaches J and is answered before
  // it runs again (its socket then has the reply), then it sends its wipe.
  j.Release();
  ASSERT_TRUE(WaitFor([&] { return j.bytes_buffered() == 0; }, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(f.worker(0)->Cont().ok());
  const std::regex ended(
      absl::StrCat("task ", prepare_id, " \\(TASK_PREPARE\\) (complete|failed|stopped)"));
  ASSERT_TRUE(
      WaitFor([&] { return std::regex_search(f.worker(0)->ReadLog(), ended); }, absl::Seconds(30)))
      << "the stale prepare run never ended on A";
  {
    // What the stale run did, for the record.
    const std::string log = f.worker(0)->ReadLog();
    const std::regex line(absl::StrCat("[^\n]*task ", prepare_id, " [^\n]*"));
    for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
         ++it) {
      std::cout << "A: " << it->str() << "\n";
    }
  }
  const uint64_t after_stale = Entries(**j_store, shard);
  std::cout << "J entries of the moved shard: " << copied << " before the stale run, "
            << after_stale << " after\n";
  EXPECT_GE(after_stale, copied) << "the stale holder's wipe reached J";

  // The stale run was seen while the move still caught up (not past its cutover,
  // whose fences would refuse the wipe on any code).
  ASSERT_EQ(MoveStateOf(f, plan->id()), pb::MOVE_CATCHING_UP);

  // Writes stop, the catch-up converges, the move cuts over and cleans up r0.
  writer.Stop();
  writer.Wait();
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(90));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  auto report = CheckPromise(writer.records(), f.CheckOptionsFor("products"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->lost, 0u) << report->Summary();
  EXPECT_TRUE(report->ok()) << report->Summary();
  RecordChaosResult("16.1",
                    absl::StrCat("stale PREPARE holder SIGSTOPped behind a held proxy, resumed in "
                                 "catching_up; J entries ",
                                 copied, " before its run, ", after_stale, " after"),
                    *report, writer.stats());
}

}  // namespace
}  // namespace miroir::testing
