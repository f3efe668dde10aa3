// A store node that comes back empty — restarted with its data directory wiped,
// so it has a new incarnation and neither data nor fences — under live writes
// (DESIGN §6 "Node rejoin", migration.auto_rejoin): the coordinator marks it
// failed from the workers' node reports, creates a rejoin plan (J = {node}), the
// plan copies every shard it owns back, and the test writer's check finds every
// owner — the rejoined node included — holding the last acknowledged operation.
#include <gtest/gtest.h>

#include "harness/move_scenario.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

struct Shape {
  const char* name;
  std::vector<int> group_sizes;
  uint32_t rf;
};

void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

class Rejoin : public ::testing::TestWithParam<Shape> {};

TEST_P(Rejoin, NodeWithANewIncarnationIsFailedAndRejoinedByAPlan) {
  TempDir tmp("rejoin");
  ScenarioOptions so;
  so.fleet.group_sizes = GetParam().group_sizes;
  so.fleet.indexes = {{"products", 8, GetParam().rf}};
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();

  // The coordinator must have seen r0's first incarnation to notice a new one.
  auto incarnation = [&f]() -> std::string {
    auto st = f.Status();
    if (!st.ok()) return "";
    for (const auto& n : st->nodes()) {
      if (n.id() == "r0") return n.incarnation();
    }
    return "";
  };
  for (int i = 0; i < 100 && incarnation().empty(); ++i) absl::SleepFor(absl::Milliseconds(100));
  const std::string first = incarnation();
  ASSERT_FALSE(first.empty());

  ASSERT_TRUE(f.redis("r0").WipeRestart().ok());

  // Bounded wait for the rejoin plan the coordinator creates by itself.
  uint64_t rejoin = 0;
  for (int i = 0; i < 300 && rejoin == 0; ++i) {
    grpc::ClientContext ctx;
    pb::ListPlansResponse plans;
    ASSERT_TRUE(f.coord().ListPlans(&ctx, pb::ListPlansRequest(), &plans).ok());
    for (const auto& p : plans.plans()) {
      if (p.kind() == pb::PLAN_REJOIN && p.node_id() == "r0") rejoin = p.id();
    }
    if (rejoin == 0) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_NE(rejoin, 0u) << "no rejoin plan for r0";
  auto done = f.WaitForPlanEnd(rejoin, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), pb::PLAN_DONE) << DescribePlan(*done);
  EXPECT_GT(done->moves_size(), 0);

  auto status = f.Status();
  ASSERT_TRUE(status.ok()) << status.status();
  for (const auto& n : status->nodes()) {
    if (n.id() == "r0") {
      EXPECT_EQ(n.status(), pb::NODE_ACTIVE);
      EXPECT_NE(n.incarnation(), first);
    }
  }
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_GT(report->keys_checked, 0u);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Rejoin,
                         ::testing::Values(Shape{"RG2_RF1", {2, 2}, 1}, Shape{"RG1_RF3", {3}, 3}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace miroir::testing
