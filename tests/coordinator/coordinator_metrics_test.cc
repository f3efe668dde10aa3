// The coordinator's gauges read from a model snapshot (RefreshStateMetrics, no
// I/O): reshards not converging and the estimated final delta (the operator's
// signal that a reshard catching up will not cut over by itself, docs/resharding.md),
// reshards and moves by state, and the per-move series dropped when their plan ends.
#include "coordinator/coordinator_metrics.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace miroir::coordinator {
namespace {

v1::ReshardRecord Reshard(uint64_t id, v1::ReshardState state, bool not_converging,
                          uint64_t estimated_ms) {
  v1::ReshardRecord r;
  r.set_id(id);
  r.set_index(absl::StrCat("ix", id));
  r.set_state(state);
  r.set_not_converging(not_converging);
  r.set_estimated_final_delta_ms(estimated_ms);
  return r;
}

bool Has(const std::string& rendered, const std::string& line) {
  return rendered.find(line + "\n") != std::string::npos;
}

TEST(CoordinatorMetrics, ReshardsNotConvergingAndTheLargestEstimateOfThoseCatchingUp) {
  ClusterCheckInput in;
  in.reshards = {
      Reshard(1, v1::RESHARD_CATCHING_UP, true, 1500),
      Reshard(2, v1::RESHARD_CATCHING_UP, false, UINT64_MAX),  // no rate measured yet
      Reshard(3, v1::RESHARD_ROLLING_BACK, true, 800),
      // Ended: its last flags are history, not a signal.
      Reshard(4, v1::RESHARD_DONE, true, 99000),
  };
  MetricsRegistry registry;
  RefreshStateMetrics(in, registry);
  std::string out = registry.Render();
  EXPECT_TRUE(Has(out, "miroir_reshard_not_converging 2")) << out;
  EXPECT_TRUE(Has(out, "miroir_reshard_estimated_final_delta_ms 1500")) << out;
  EXPECT_TRUE(Has(out, "miroir_reshards{state=\"catching_up\"} 2")) << out;
  EXPECT_TRUE(Has(out, "miroir_reshards{state=\"rolling_back\"} 1")) << out;
  EXPECT_TRUE(Has(out, "miroir_reshards{state=\"done\"} 1")) << out;
  EXPECT_TRUE(Has(out, "miroir_reshards{state=\"failed\"} 0")) << out;  // every state listed

  // The reshards cut over: both gauges fall back to 0 in the same registry.
  in.reshards = {Reshard(1, v1::RESHARD_DONE, true, 1500),
                 Reshard(3, v1::RESHARD_ABORTED, true, 800)};
  RefreshStateMetrics(in, registry);
  out = registry.Render();
  EXPECT_TRUE(Has(out, "miroir_reshard_not_converging 0")) << out;
  EXPECT_TRUE(Has(out, "miroir_reshard_estimated_final_delta_ms 0")) << out;
  EXPECT_TRUE(Has(out, "miroir_reshards{state=\"catching_up\"} 0")) << out;
}

TEST(CoordinatorMetrics, MoveSeriesLiveWithTheirPlanAndMovesCountByState) {
  ClusterCheckInput in;
  in.now_ms = 50'000;
  v1::Plan plan;
  plan.set_id(7);
  plan.set_state(v1::PLAN_RUNNING);
  v1::Move* m = plan.add_moves();
  m->set_index("products");
  m->set_shard(3);
  m->set_group("g0");
  m->set_state(v1::MOVE_COPYING);
  m->set_state_since_ms(20'000);
  m->set_documents_copied(1200);
  in.plans = {plan};
  MetricsRegistry registry;
  RefreshStateMetrics(in, registry);
  std::string out = registry.Render();
  const std::string labels = "{group=\"g0\",index=\"products\",plan=\"7\",shard=\"3\"}";
  EXPECT_TRUE(Has(out, "miroir_move_state_seconds" + labels + " 30")) << out;
  EXPECT_TRUE(Has(out, "miroir_move_documents_copied" + labels + " 1200")) << out;
  EXPECT_TRUE(Has(out, "miroir_moves{state=\"copying\"} 1")) << out;
  EXPECT_TRUE(Has(out, "miroir_plans_active 1")) << out;

  in.plans[0].set_state(v1::PLAN_DONE);
  RefreshStateMetrics(in, registry);
  out = registry.Render();
  EXPECT_EQ(out.find("miroir_move_state_seconds{"), std::string::npos) << out;
  EXPECT_TRUE(Has(out, "miroir_moves{state=\"copying\"} 0")) << out;
  EXPECT_TRUE(Has(out, "miroir_plans{state=\"done\"} 1")) << out;
  EXPECT_TRUE(Has(out, "miroir_plans_active 0")) << out;
}

}  // namespace
}  // namespace miroir::coordinator
