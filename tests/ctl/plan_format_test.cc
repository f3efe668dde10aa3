#include "ctl/plan_format.h"

#include <gtest/gtest.h>

#include "ctl/flag_parsing.h"

namespace miroir::ctl {
namespace {

namespace pb = miroir::v1;

TEST(PlanFormat, EnumNamesDropThePrefix) {
  EXPECT_EQ(KindName(pb::PLAN_ADD_NODE), "add_node");
  EXPECT_EQ(KindName(pb::PLAN_REMOVE_GROUP), "remove_group");
  EXPECT_EQ(StateName(pb::PLAN_ABORTED), "aborted");
  EXPECT_EQ(MoveStateName(pb::MOVE_CATCHING_UP), "catching_up");
  EXPECT_EQ(MoveStateName(pb::MOVE_FINAL_DELTA), "final_delta");
  EXPECT_EQ(NodeStatusName(pb::NODE_FAILED), "failed");
  EXPECT_EQ(ShardStateName(pb::SHARD_DUAL_WRITE), "dual_write");
  EXPECT_EQ(RoleName(pb::GENERATION_SHADOW), "shadow");
}

TEST(PlanFormat, EndedStates) {
  EXPECT_TRUE(PlanEnded(pb::PLAN_DONE));
  EXPECT_TRUE(PlanEnded(pb::PLAN_FAILED));
  EXPECT_TRUE(PlanEnded(pb::PLAN_ABORTED));
  EXPECT_FALSE(PlanEnded(pb::PLAN_RUNNING));
  EXPECT_FALSE(PlanEnded(pb::PLAN_PAUSED));
  EXPECT_FALSE(PlanEnded(pb::PLAN_ABORTING));
}

TEST(PlanFormat, ProgressLineShowsCountsRateAndEta) {
  pb::Move m;
  m.set_index("products");
  m.set_shard(3);
  m.set_group("g0");
  m.set_state(pb::MOVE_COPYING);
  m.set_est_documents(5000);
  m.set_documents_copied(1250);
  EXPECT_EQ(ProgressLine(m, 250, 20),
            "products/3 g0 copying [#####---------------] 1250/5000 docs 250/s ETA 15s");
  EXPECT_EQ(ProgressLine(m, 0, 10), "products/3 g0 copying [###-------] 1250/5000 docs");
  m.set_est_documents(0);
  m.set_state(pb::MOVE_CATCHING_UP);
  m.set_remaining(4000);
  m.set_message("not converging");
  EXPECT_EQ(ProgressLine(m, 20000, 4),
            "products/3 g0 catching_up [----] 1250/? docs 20.0k/s remaining 4000 (not converging)");
  m.set_est_documents(1000);  // more copied than estimated: the bar is full, no ETA
  EXPECT_EQ(ProgressLine(m, 10, 4).substr(0, 44), "products/3 g0 catching_up [####] 1250/1000 d");
}

TEST(PlanFormat, DryRunJsonHasOnlyTheCliFields) {
  pb::Plan p;
  p.set_id(9);
  p.set_kind(pb::PLAN_RESTORE);
  p.set_state(pb::PLAN_RUNNING);
  p.add_warnings("target r4 has no stats");
  auto j = DryRunJson(p);
  EXPECT_EQ(j.dump(),
            "{\"kind\":\"restore\",\"moves\":[],\"est_duration_s\":0.0,"
            "\"warnings\":[\"target r4 has no stats\"]}");
  auto full = PlanJson(p);
  EXPECT_EQ(full["id"], 9);
  EXPECT_EQ(full["state"], "running");
}

TEST(FlagParsing, NodesFlag) {
  auto nodes = ParseNodesFlag("a=127.0.0.1:1, b=[::1]:2");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[1].id(), "b");
  EXPECT_EQ((*nodes)[1].address(), "[::1]:2");
  EXPECT_EQ((*nodes)[0].store(), "redis");
  for (const char* bad : {"", "a", "=h:1", "a=", "a=h", "a=h:", "a=:1", "a=h:1,a=h:2", "a=h:1,"}) {
    auto r = ParseNodesFlag(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().rfind("--nodes '", 0), 0u);
  }
}

TEST(FlagParsing, GroupsFlagKeepsOrderAndTrimsSpaces) {
  auto g = ParseGroupsFlag(" g1 : b , a ; g0:c ");
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->size(), 2u);
  EXPECT_EQ((*g)[0].group, "g1");
  EXPECT_EQ((*g)[0].nodes, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ((*g)[1].group, "g0");
}

}  // namespace
}  // namespace miroir::ctl
