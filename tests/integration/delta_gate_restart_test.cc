// The delta-skip gate is checked again before a move goes active (DESIGN §6
// "The safety gate"; coordinator/plan_runner.cc, MOVE_COPYING with
// skip_delta_pass): the config can change across a restart, so a plan created
// with anti-entropy on that skips the delta pass must not cut over once the
// coordinator runs with anti-entropy off.
//
// Forced on real processes: the backfill is throttled so every move is still
// copying when the coordinator is SIGKILLed (asserted, never assumed); it comes
// back on the same data directory with `anti_entropy.enabled: false`.
//
// Without the re-check (the `CheckDeltaSkipGate(true, cfg_)` call in the
// MOVE_COPYING branch replaced by OkStatus, tried while writing this test) the
// plan ended DONE: its three moves went copying -> active ("backfill done;
// delta pass skipped (anti-entropy on)") under a config with anti-entropy off,
// with an empty message; shards 0, 5 and 6 were then owned, written and read
// on r9.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "chaos/chaos_util.h"
#include "common/route_sets.h"
#include "coordinator/config.h"
#include "harness/move_scenario.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

// shard -> nodes of group g0, for one field of the live generation's routes.
using GroupNodes = std::map<uint32_t, std::vector<std::string>>;

absl::StatusOr<pb::GetIndexResponse> Index(Fleet& f) {
  auto all = f.Indexes();
  if (!all.ok()) return all.status();
  auto it = all->find("products");
  if (it == all->end()) return absl::NotFoundError("index products");
  return it->second;
}

std::vector<std::string> Nodes(const google::protobuf::RepeatedPtrField<pb::GroupOwners>& sets) {
  std::vector<std::string> out;
  for (const auto& g : sets) out.insert(out.end(), g.nodes().begin(), g.nodes().end());
  std::sort(out.begin(), out.end());
  return out;
}

GroupNodes OwnersOf(const pb::GetIndexResponse& index) {
  GroupNodes out;
  for (const auto& g : index.routes()) {
    if (g.generation() != index.index().live_generation()) continue;
    for (const auto& r : g.routes()) out[r.shard()] = Nodes(r.owners());
  }
  return out;
}

TEST(DeltaGateRestart, AntiEntropyTurnedOffAcrossAKillFailsTheSkippedDeltaMoves) {
  TempDir tmp("delta_gate_restart");
  ScenarioOptions so;
  so.fleet.group_sizes = {2};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", 8, 1}};
  so.fleet.coordinator_config["anti_entropy"]["enabled"] = true;
  so.keys = 800;  // ~100 per shard
  so.write_rate = 100;
  so.max_duration = absl::Seconds(90);
  so.seed = ChaosSeed();
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto before = Index(f);
  ASSERT_TRUE(before.ok()) << before.status();
  const GroupNodes owners_before = OwnersOf(*before);

  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_skip_delta_pass(true);    // allowed at creation: anti-entropy is on
  req.set_force(true);              // never bypasses the delta gate
  req.set_throttle_docs_per_s(25);  // ~100 documents a shard: seconds of copying
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_GT(plan->moves_size(), 0) << "r9 was given no shard";

  // The kill lands while the copy runs: some move copying, none past it.
  auto copying = f.WaitForMoveState(plan->id(), pb::MOVE_COPYING, absl::Seconds(30));
  ASSERT_TRUE(copying.ok()) << copying.status();
  auto at_kill = f.GetPlan(plan->id());
  ASSERT_TRUE(at_kill.ok()) << at_kill.status();
  for (const auto& m : at_kill->plan().moves()) {
    ASSERT_LE(m.state(), pb::MOVE_COPYING)
        << "a move got past copying before the kill; the throttle did not hold it\n"
        << DescribePlan(at_kill->plan());
  }

  // Same data dir, changed config: anti-entropy off (valid on its own).
  YAML::Node cfg = f.options().coordinator_config;
  cfg["anti_entropy"]["enabled"] = false;
  ASSERT_TRUE(f.WriteCoordinatorConfig(cfg).ok());
  ASSERT_TRUE(f.RestartCoordinator().ok());  // SIGKILL, then start again

  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(60));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_FAILED) << DescribePlan(*end);
  for (const auto& m : end->moves()) {
    EXPECT_EQ(m.state(), pb::MOVE_FAILED) << DescribePlan(*end);
    EXPECT_THAT(m.message(), ::testing::HasSubstr(coordinator::kDeltaSkipRefusal));
  }
  auto history = f.GetPlan(plan->id());
  ASSERT_TRUE(history.ok()) << history.status();
  for (const auto& e : history->history()) {
    EXPECT_NE(e.to(), "active") << "move " << e.move_id() << " cut over: " << e.reason();
  }

  // The routing stays on the old owners: r9 owns, receives and serves nothing.
  auto after = Index(f);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(OwnersOf(*after), owners_before);
  for (const auto& g : after->routes()) {
    if (g.generation() != after->index().live_generation()) continue;
    for (const auto& r : g.routes()) {
      EXPECT_THAT(Nodes(WriteSet(r)), ::testing::Not(::testing::Contains("r9")))
          << "shard " << r.shard();
      EXPECT_THAT(Nodes(ReadSet(r)), ::testing::Not(::testing::Contains("r9")))
          << "shard " << r.shard();
    }
  }

  // Nothing acknowledged is lost. The failed plan is then aborted, which wipes
  // r9's partial copies, so the whole check (wrong owners too) holds.
  auto aborted = AbortPlan(f, plan->id());
  ASSERT_TRUE(aborted.ok()) << aborted.status();
  auto abort_end = f.WaitForPlanEnd(plan->id(), absl::Seconds(30));
  ASSERT_TRUE(abort_end.ok()) << abort_end.status();
  EXPECT_EQ(abort_end->state(), pb::PLAN_ABORTED) << DescribePlan(*abort_end);
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  RecordChaosResult("8",
                    "gate re-check: skipped-delta add-node created with AE on, coordinator "
                    "SIGKILLed mid-copy and restarted with AE off; plan FAILED, then aborted",
                    *report, (*sc)->writer().stats());
  EXPECT_GT(report->acknowledged_writes, 0u);
  EXPECT_TRUE(report->ok()) << report->Summary();
}

}  // namespace
}  // namespace miroir::testing
