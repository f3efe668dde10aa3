// The parameterised move matrix of the chaos suite (issue 8 scenarios 1, 2, 3,
// 6, 7, 10, 12, 13, 14): anti-entropy on/off x delta pass on/skipped x group
// shape x write volume. One add-node plan runs under live writes (writes span
// the plan's whole life; for a volume case the plan is paused while its moves
// dual-write until the volume is acknowledged); then the writer's check
// (DESIGN §4) is asserted, and the numbers are recorded (chaos_util.h).
#ifndef MIROIR_TESTS_CHAOS_CHAOS_MATRIX_H_
#define MIROIR_TESTS_CHAOS_CHAOS_MATRIX_H_

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "chaos/chaos_util.h"
#include "harness/move_scenario.h"

namespace miroir::testing {

struct MatrixCase {
  std::string name;       // gtest-safe
  std::string scenarios;  // issue 8 scenario numbers
  bool anti_entropy = true;
  bool skip_delta = false;
  int group_size = 2;
  int keys = 400;
  // Volume: this many acknowledged writes while the move is dual-writing (the
  // plan is paused once its moves copy, resumed when the writer got there).
  uint64_t min_writes = 0;
  double write_rate = 400;  // 0: as fast as acks come
};

// gtest prints the case by its name (not its bytes).
inline void PrintTo(const MatrixCase& c, std::ostream* os) { *os << c.name; }

inline std::string MatrixConfig(const MatrixCase& c) {
  return absl::StrCat("AE ", c.anti_entropy ? "on" : "off", ", delta ",
                      c.skip_delta ? "skipped" : "on", ", group of ", c.group_size, "->",
                      c.group_size + 1, " (rf ", c.group_size, ")", ", ", c.keys, " keys");
}

inline void RunMatrixCase(const MatrixCase& c) {
  namespace pb = ::miroir::v1;
  TempDir tmp("chaos_" + c.name);
  ScenarioOptions so;
  so.fleet.group_sizes = {c.group_size};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", 4, static_cast<uint32_t>(c.group_size)}};
  so.fleet.coordinator_config["anti_entropy"]["enabled"] = c.anti_entropy;
  so.keys = c.keys;
  so.write_rate = c.write_rate;
  so.delete_fraction = 0.2;
  so.seed = ChaosSeed();
  so.max_duration = absl::Seconds(c.min_writes > 100000 ? 1800 : 300);
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  const std::string id = absl::StrCat("r", c.group_size + 10);
  auto addr = f.AddNodeProcess(id, "g0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  pb::CreatePlanRequest req = AddNodeRequest(id, "g0", *addr);
  req.set_skip_delta_pass(c.skip_delta);
  const uint64_t acked_before = (*sc)->writer().stats().acked();
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  uint64_t during = 0;
  if (c.min_writes > 0) {
    // Volume during the move: hold the plan while its moves dual-write (every
    // write goes to old and new owners) until the writer has the volume acked
    // (bounded by the writer's max_duration), then let it cut over.
    auto copying = f.WaitForMoveState(plan->id(), pb::MOVE_COPYING, absl::Seconds(120));
    ASSERT_TRUE(copying.ok()) << copying.status();
    const std::string pid = absl::StrCat(plan->id());
    auto paused = f.Ctl({"plan", "pause", pid});
    ASSERT_TRUE(paused.ok() && paused->exit_code == 0)
        << (paused.ok() ? paused->stderr_text : paused.status().ToString());
    for (int i = 0; i < 36000 && (*sc)->writer().stats().acked() - acked_before < c.min_writes;
         ++i) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    auto resumed = f.Ctl({"plan", "resume", pid});
    ASSERT_TRUE(resumed.ok() && resumed->exit_code == 0)
        << (resumed.ok() ? resumed->stderr_text : resumed.status().ToString());
  }
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(240));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  during = (*sc)->writer().stats().acked() - acked_before;
  // Scenario 2: with the delta pass skipped, what the new owners lacked before
  // the leaving owners were reconciled into them is the loss that would be
  // visible without that step: the reconciliation's repair writes, from the
  // moves' events ("leaving owners reconciled (K repaired)").
  std::string reconciled;
  if (c.skip_delta) {
    auto full = f.GetPlan(plan->id());
    ASSERT_TRUE(full.ok()) << full.status();
    uint64_t repaired = 0;
    int moves = 0;
    for (const auto& e : full->history()) {
      uint64_t k = 0;
      const std::string prefix = "leaving owners reconciled (";
      if (absl::StartsWith(e.reason(), prefix) &&
          absl::SimpleAtoi(
              e.reason().substr(prefix.size(), e.reason().find(' ', prefix.size()) - prefix.size()),
              &k)) {
        repaired += k;
        ++moves;
      }
    }
    EXPECT_EQ(moves, end->moves_size()) << "every delta-skipped move reconciles its leaving owner";
    reconciled = absl::StrCat(", before the leaving-node reconciliation the new owners lacked ",
                              repaired, " documents (repaired by it)");
  }
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  WriterStats st = (*sc)->writer().stats();
  RecordChaosResult(
      absl::StrCat(c.scenarios),
      absl::StrCat(MatrixConfig(c), ", ", during, " acked during the plan", reconciled), *report,
      st);
  EXPECT_GE(during, c.min_writes);
  EXPECT_TRUE(report->ok()) << MatrixConfig(c) << " seed " << ChaosSeed() << "\n"
                            << report->Summary();
}

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_CHAOS_CHAOS_MATRIX_H_
