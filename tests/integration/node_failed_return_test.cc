// A node marked failed while it still runs, written to by a worker that has not
// seen the failure, and its return (DESIGN §9a, §6 "Node rejoin"; issue 16 item 6).
//
// Two groups, RF 1: r0 (g0) and r1 (g1), both behind proxies; worker 1 reaches
// the coordinator through a proxy of its own. The partition is asymmetric:
//   - worker 1 is cut from the coordinator and from r1 (the other group's node):
//     its view is older than the failure and its lease still runs, so it writes
//     to r0 and is acknowledged by r0 alone (degraded: g1 missed);
//   - worker 0 (the only one the coordinator can lease the fence to) is cut from
//     r0: the fence of `nodes fail r0` cannot reach it.
// A repairing anti-entropy run before the failure gives every node its sync
// points. After healing, `plan rejoin r0` (J = {r0}) wipes r0's leftovers in its prepare
// and copies r0's shards back from r1. The writes only r0 acknowledged must be on
// the owners afterwards, and nothing older than the window may come back (keys
// deleted before the failure stay deleted).
//
// Before the fix (prepare wiped r0 without copying what changed there after its
// sync point) every write of the window was lost: "window: 400 puts acked (400
// degraded, 0 unknown); check: acknowledged=800 keys_checked=800 lost=800
// resurrected=0" — each of the 400 window keys absent on both owners, r0 and r1.
#include <gtest/gtest.h>

#include <iostream>

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

TEST(NodeFailedReturn, WritesOnlyTheFailedNodeAcknowledgedSurviveItsRejoin) {
  constexpr uint32_t kShards = 8;
  TempDir tmp("failed-return");
  FleetOptions fo;
  fo.group_sizes = {1, 1};
  fo.indexes = {{"products", kShards, 1}};
  fo.proxied_nodes = {"r0", "r1"};
  fo.workers = 1;
  // A lease long enough for the window below to fit inside it (§9a: the lease is
  // what bounds a stale writer no fence reaches).
  fo.coordinator_config["worker_lease_ttl"] = "8s";
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  auto coord_proxy = TcpProxy::Start(PortOf(f.coordinator_address()));
  ASSERT_TRUE(coord_proxy.ok()) << coord_proxy.status();
  auto stale = f.AddWorker(0, (*coord_proxy)->address());
  ASSERT_TRUE(stale.ok()) << stale.status();
  ASSERT_TRUE(f.WaitForWorkers(2).ok());

  // Before the failure: every key put through both workers, half of them deleted.
  WriterOptions before = f.WriterOptionsFor();
  before.key_prefix = "old:";
  before.keys = 400;
  before.load_first = true;
  before.load_only = true;
  before.batch_size = 50;
  before.max_duration = absl::Seconds(60);
  before.seed = ChaosSeed();
  TestWriter loader(before);
  ASSERT_TRUE(loader.Run().ok());
  ASSERT_EQ(loader.stats().acked_puts, 400u);
  before.keys = 200;  // old:0..old:199 deleted
  before.load_deletes = true;
  TestWriter deleter(before);
  ASSERT_TRUE(deleter.Run().ok());
  ASSERT_EQ(deleter.stats().acked_deletes, 200u);
  std::map<std::string, KeyRecord> expected = loader.records();
  for (const auto& [k, rec] : deleter.records()) expected[k] = rec;

  // A repairing anti-entropy run over every shard: each node's sync points. The
  // rejoin below then copies from r0 only what changed after them.
  auto ae = f.Ctl({"anti-entropy", "run", "--index", "products"});
  ASSERT_TRUE(ae.ok()) << ae.status();
  ASSERT_EQ(ae->exit_code, 0) << ae->stdout_text << ae->stderr_text;
  {
    grpc::ClientContext ctx;
    pb::ListNodesResponse nodes;
    ASSERT_TRUE(f.coord().ListNodes(&ctx, pb::ListNodesRequest(), &nodes).ok());
    for (const auto& n : nodes.nodes()) {
      EXPECT_EQ(n.sync_points_size(), static_cast<int>(kShards)) << n.id();
    }
  }

  // The asymmetric partition, then the failure.
  const pid_t stale_pid = f.worker(*stale)->pid();
  const pid_t other_pid = f.worker(0)->pid();
  f.node("r1").proxy->CutPeer(stale_pid);
  f.node("r0").proxy->CutPeer(other_pid);
  (*coord_proxy)->Cut();
  ASSERT_TRUE(MarkNodeFailed(f, "r0").ok());

  // The window: worker 1, on its old view, writes new keys; r0 alone acks them.
  WriterOptions window = f.WriterOptionsFor();
  window.worker_addresses = {f.worker_address(*stale)};
  window.key_prefix = "win:";
  window.seed = ChaosSeed();
  window.keys = 400;
  window.load_first = true;
  window.load_only = true;
  window.streams = 1;
  window.batch_size = 20;
  window.batch_timeout = absl::Seconds(3);
  window.max_duration = absl::Seconds(4);
  TestWriter writer(window);
  ASSERT_TRUE(writer.Run().ok());
  const WriterStats ws = writer.stats();
  ASSERT_GT(ws.acked_puts, 0u) << "the stale worker acknowledged nothing";
  EXPECT_GT(ws.degraded, 0u) << "acks were not degraded: r1 was reached";
  for (const auto& [k, rec] : writer.records()) expected[k] = rec;

  // Heal; the stale worker comes back to the coordinator and sees r0 failed.
  f.node("r1").proxy->Pass();
  f.node("r0").proxy->Pass();
  (*coord_proxy)->Pass();
  ASSERT_TRUE(f.WaitForWorkers(2, absl::Seconds(60)).ok());

  pb::CreatePlanRequest req;
  req.set_kind(pb::PLAN_REJOIN);
  req.set_node_id("r0");
  auto plan = f.CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto done = f.WaitForPlanEnd(plan->id(), absl::Seconds(120));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), pb::PLAN_DONE) << DescribePlan(*done);

  auto report = CheckPromise(expected, f.CheckOptionsFor());
  ASSERT_TRUE(report.ok()) << report.status();
  std::cout << "window: " << ws.acked_puts << " puts acked (" << ws.degraded << " degraded, "
            << ws.unknown << " unknown); check: " << report->Summary() << "\n";
  EXPECT_EQ(report->lost, 0u) << report->Summary();
  EXPECT_EQ(report->resurrected, 0u) << report->Summary();
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_GE(report->keys_checked, 400u + ws.acked_puts);
  RecordChaosResult("16.6",
                    "nodes fail r0 while it runs; a worker cut from the coordinator and r1 "
                    "writes 400 keys acked by r0 alone; heal, rejoin r0 (two groups, RF 1)",
                    *report, ws);

  // `nodes forget` refuses a node that is not failed (r0 rejoined) and an unknown
  // one, changing nothing.
  auto active = f.Ctl({"nodes", "forget", "--id", "r0"});
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_NE(active->exit_code, 0);
  EXPECT_NE(active->stderr_text.find("not marked failed"), std::string::npos)
      << active->stderr_text;
  auto unknown = f.Ctl({"nodes", "forget", "--id", "r9"});
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_NE(unknown->exit_code, 0);
  EXPECT_NE(unknown->stderr_text.find("unknown node"), std::string::npos) << unknown->stderr_text;
}

}  // namespace
}  // namespace miroir::testing
