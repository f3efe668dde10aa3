#include "coordinator/move_gates.h"

#include <gtest/gtest.h>

namespace miroir::coordinator {
namespace {

constexpr int64_t kDay = 1'700'006'400'000;  // some UTC midnight (unix ms)

int64_t At(int h, int m) { return kDay - kDay % 86'400'000 + (h * 60 + m) * 60'000; }

TEST(Gates, DeltaSkipRefusedWithAntiEntropyOffAndOnlyTheTestOverrideBypasses) {
  CoordinatorConfig c;
  c.anti_entropy.enabled = false;
  auto st = CheckDeltaSkipGate(true, c);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("migration.skip_delta_pass=true"), std::string::npos);
  EXPECT_NE(st.message().find("anti_entropy.enabled=false"), std::string::npos);
  EXPECT_TRUE(CheckDeltaSkipGate(false, c).ok());
  c.test_allow_unsafe_skip_delta = true;
  EXPECT_TRUE(CheckDeltaSkipGate(true, c).ok());
  c = CoordinatorConfig();
  EXPECT_TRUE(CheckDeltaSkipGate(true, c).ok());  // AE on
}

TEST(Gates, WindowsByNameAndRangeWrappingMidnight) {
  CoordinatorConfig c;
  c.schedule_windows["night"] = "22:00-02:00";
  auto w = PlanWindows("night", c);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(CheckWindowGate(*w, At(23, 0), false).ok());
  EXPECT_TRUE(CheckWindowGate(*w, At(1, 59), false).ok());
  auto st = CheckWindowGate(*w, At(12, 0), false);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("22:00-02:00"), std::string::npos);
  EXPECT_TRUE(CheckWindowGate(*w, At(12, 0), true).ok());  // force
  auto r = PlanWindows("10:00-11:00", c);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(CheckWindowGate(*r, At(10, 30), false).ok());
  EXPECT_FALSE(CheckWindowGate(*r, At(11, 0), false).ok());
  EXPECT_EQ(PlanWindows("lunch", c).status().code(), absl::StatusCode::kInvalidArgument);
  auto any = PlanWindows("", c);  // no allowed_windows: any time
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(CheckWindowGate(*any, At(12, 0), false).ok());
}

v1::Move MoveTo(const std::string& target, uint64_t bytes) {
  v1::Move m;
  m.set_index("p");
  m.set_generation(1);
  m.set_shard(3);
  m.add_old_owners("a");
  m.add_new_owners(target);
  m.set_est_bytes(bytes);
  return m;
}

TEST(Gates, CapacityNeedsBytesPlusHeadroomWhenKnown) {
  std::map<std::string, NodeHealth> h;
  h["b"].total_bytes = 500;
  h["b"].capacity_bytes = 1000;
  EXPECT_TRUE(CheckCapacityGate({MoveTo("b", 300)}, h).ok());
  auto st = CheckCapacityGate({MoveTo("b", 450)}, h);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("b"), std::string::npos);
  EXPECT_TRUE(CheckCapacityGate({MoveTo("c", 1 << 30)}, h).ok());  // unknown capacity
  // The store's own used memory counts when it exceeds the shard bytes.
  h["b"].used_bytes = 800;
  EXPECT_EQ(CheckCapacityGate({MoveTo("b", 150)}, h).code(), absl::StatusCode::kFailedPrecondition);
  h["b"].used_bytes = 100;
  EXPECT_TRUE(CheckCapacityGate({MoveTo("b", 300)}, h).ok());
}

TEST(Gates, TargetHealth) {
  ClusterState s;
  v1::Node b;
  b.set_id("b");
  b.set_status(v1::NODE_FAILED);
  s.nodes["b"] = b;
  EXPECT_EQ(CheckTargetHealthGate({MoveTo("b", 1)}, s, {}).code(),
            absl::StatusCode::kFailedPrecondition);
  std::map<std::string, NodeHealth> h;
  h["c"].reachable = false;
  auto st = CheckTargetHealthGate({MoveTo("c", 1)}, s, h);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("not healthy"), std::string::npos);
  EXPECT_TRUE(CheckTargetHealthGate({MoveTo("d", 1)}, s, h).ok());
  // A rejoin copies back into its own failed node, but never into an unreachable one.
  EXPECT_TRUE(CheckTargetHealthGate({MoveTo("b", 1)}, s, h, "b").ok());
  EXPECT_EQ(CheckTargetHealthGate({MoveTo("c", 1)}, s, h, "c").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckTargetHealthGate({MoveTo("b", 1)}, s, h, "x").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(Gates, ConflictsWithAMoveOnTheShardOrAReshardExceptRestore) {
  ClusterState s;
  v1::Plan p;
  p.set_id(5);
  p.set_state(v1::PLAN_RUNNING);
  s.plans[5] = p;
  v1::Move busy = MoveTo("z", 0);
  busy.set_id(6);
  busy.set_plan_id(5);
  busy.set_state(v1::MOVE_COPYING);
  s.moves[6] = busy;
  auto st = CheckConflictGate({MoveTo("b", 0)}, v1::PLAN_ADD_NODE, s);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("shard 3"), std::string::npos);
  EXPECT_NE(st.message().find("plan 5"), std::string::npos);
  s.moves[6].set_state(v1::MOVE_DONE);
  EXPECT_TRUE(CheckConflictGate({MoveTo("b", 0)}, v1::PLAN_ADD_NODE, s).ok());
  v1::GenerationRoute shadow;
  shadow.set_index("p");
  shadow.set_generation(9);
  shadow.set_role(v1::GENERATION_SHADOW);
  s.generations[9] = shadow;
  st = CheckConflictGate({MoveTo("b", 0)}, v1::PLAN_ADD_NODE, s);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("reshard"), std::string::npos);
  EXPECT_TRUE(CheckConflictGate({MoveTo("b", 0)}, v1::PLAN_RESTORE, s).ok());
}

}  // namespace
}  // namespace miroir::coordinator
