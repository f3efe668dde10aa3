// The capacity gate (DESIGN §6 "Other gates", issue 3 (c)) on real redis-server
// nodes: workers report each store's memory limit and use; a plan that would move
// more bytes onto a node than its limit leaves (with 10% headroom) is refused
// FAILED_PRECONDITION naming the node, and saves nothing; once the limit is
// raised, the same plan is accepted.
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/test_writer.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

// Waits (bounded) until the coordinator reports `node` with capacity `want`.
pb::Node WaitForCapacity(Fleet& f, const std::string& node, uint64_t want) {
  pb::Node last;
  for (int i = 0; i < 100; ++i) {
    auto st = f.Status();
    if (st.ok()) {
      for (const auto& n : st->nodes()) {
        if (n.id() == node) last = n;
      }
      if (last.capacity_bytes() == want) return last;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return last;
}

TEST(CapacityGate, PlanRefusedWhenTheTargetLacksMemoryUntilTheLimitIsRaised) {
  TempDir tmp("capacity");
  FleetOptions opts;
  opts.group_sizes = {2};
  opts.indexes = {{"products", 8, 1}};
  auto fleet = Fleet::Start(tmp.path(), opts);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  WriterOptions wo = f.WriterOptionsFor("products");
  wo.keys = 2000;
  wo.max_ops = 2000;
  wo.load_first = true;
  wo.delete_fraction = 0;
  wo.body_padding = 400;
  wo.max_duration = absl::Seconds(60);
  TestWriter load(wo);
  ASSERT_TRUE(load.Run().ok());
  ASSERT_GT(load.stats().acked(), 1000u);

  // r0 would receive r1's shards (~half the corpus); leave it room for far less.
  auto used = f.redis("r0").Command({"INFO", "memory"});
  ASSERT_TRUE(used.ok()) << used.status();
  uint64_t used_bytes = 0;
  for (absl::string_view line : absl::StrSplit(*used, absl::ByAnyChar("\r\n"))) {
    if (absl::ConsumePrefix(&line, "used_memory:")) {
      ASSERT_TRUE(absl::SimpleAtoi(line, &used_bytes));
    }
  }
  ASSERT_GT(used_bytes, 0u);
  const uint64_t limit = used_bytes + 200 * 1024;
  ASSERT_TRUE(f.redis("r0").Command({"CONFIG", "SET", "maxmemory", absl::StrCat(limit)}).ok());
  pb::Node r0 = WaitForCapacity(f, "r0", limit);
  ASSERT_EQ(r0.capacity_bytes(), limit) << "no node report carried the new limit";
  EXPECT_GT(r0.used_bytes(), 0u);

  grpc::ClientContext ctx;
  pb::CreatePlanResponse resp;
  grpc::Status st = f.coord().CreatePlan(&ctx, RemoveNodeRequest("r1"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << st.error_message() << " limit " << limit << " used " << r0.used_bytes() << "\n"
      << DescribePlan(resp.plan()) << resp.plan().DebugString().substr(0, 1500);
  EXPECT_NE(st.error_message().find("r0"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("capacity"), std::string::npos) << st.error_message();
  {
    grpc::ClientContext lctx;
    pb::ListPlansResponse plans;
    ASSERT_TRUE(f.coord().ListPlans(&lctx, pb::ListPlansRequest(), &plans).ok());
    EXPECT_EQ(plans.plans_size(), 0) << "a refused plan saved something";
  }

  // Raised limit: the same plan passes the gate.
  const uint64_t roomy = uint64_t{1} << 30;
  ASSERT_TRUE(f.redis("r0").Command({"CONFIG", "SET", "maxmemory", absl::StrCat(roomy)}).ok());
  ASSERT_EQ(WaitForCapacity(f, "r0", roomy).capacity_bytes(), roomy);
  auto plan = f.CreatePlan(RemoveNodeRequest("r1"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_GT(plan->moves_size(), 0);
}

}  // namespace
}  // namespace miroir::testing
