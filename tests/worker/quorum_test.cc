// The quorum rule (DESIGN §4) over RG x RF, including a restore's acking set.
#include "worker/quorum.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

google::protobuf::RepeatedPtrField<v1::GroupOwners> Acking(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& groups) {
  google::protobuf::RepeatedPtrField<v1::GroupOwners> out;
  for (const auto& [g, nodes] : groups) {
    auto* go = out.Add();
    go->set_group(g);
    for (const auto& n : nodes) go->add_nodes(n);
  }
  return out;
}

TEST(Quorum, GroupQuorumIsFloorHalfPlusOne) {
  EXPECT_EQ(GroupQuorum(1), 1u);
  EXPECT_EQ(GroupQuorum(2), 2u);
  EXPECT_EQ(GroupQuorum(3), 2u);
  EXPECT_EQ(GroupQuorum(4), 3u);
  EXPECT_EQ(GroupQuorum(5), 3u);
}

TEST(Quorum, EveryRgRfCombinationSucceedsWithOneFullGroupOnly) {
  for (uint32_t rg = 1; rg <= 3; ++rg) {
    for (uint32_t rf = 1; rf <= 4; ++rf) {
      std::vector<std::pair<std::string, std::vector<std::string>>> groups;
      for (uint32_t g = 0; g < rg; ++g) {
        std::vector<std::string> nodes;
        for (uint32_t n = 0; n < rf; ++n)
          nodes.push_back("g" + std::to_string(g) + "n" + std::to_string(n));
        groups.emplace_back("g" + std::to_string(g), nodes);
      }
      auto acking = Acking(groups);
      const uint32_t q = GroupQuorum(rf);
      // Exactly q members of group 0 applied, nothing elsewhere.
      absl::flat_hash_set<std::string> applied;
      for (uint32_t n = 0; n < q; ++n) applied.insert("g0n" + std::to_string(n));
      QuorumResult r = EvaluateQuorum(acking, rf, applied);
      EXPECT_TRUE(r.ok) << "rg=" << rg << " rf=" << rf;
      EXPECT_EQ(r.degraded_groups.size(), rg - 1) << "rg=" << rg << " rf=" << rf;
      // One fewer than q: no group succeeds.
      applied.erase("g0n" + std::to_string(q - 1));
      r = EvaluateQuorum(acking, rf, applied);
      EXPECT_FALSE(r.ok) << "rg=" << rg << " rf=" << rf;
      EXPECT_EQ(r.degraded_groups.size(), rg);
      // Every node applied: ok, not degraded.
      for (const auto& [g, nodes] : groups) applied.insert(nodes.begin(), nodes.end());
      r = EvaluateQuorum(acking, rf, applied);
      EXPECT_TRUE(r.ok);
      EXPECT_TRUE(r.degraded_groups.empty());
      EXPECT_EQ(r.ok_groups.size(), rg);
    }
  }
}

TEST(Quorum, NodesOutsideTheAckingSetDoNotCount) {
  // Dual-write: the new owner r9 receives the write but only old owners ack.
  auto acking = Acking({{"g0", {"r0", "r1", "r2"}}});
  QuorumResult r = EvaluateQuorum(acking, 3, {"r0", "r9"});
  EXPECT_FALSE(r.ok);
  r = EvaluateQuorum(acking, 3, {"r0", "r1", "r9"});
  EXPECT_TRUE(r.ok);
}

TEST(Quorum, RestoreReplacementCountsInPlaceOfFailedNode) {
  // r1 failed; the coordinator lists replacement r5 in the acking set.
  auto acking = Acking({{"g0", {"r0", "r5", "r2"}}});
  EXPECT_TRUE(EvaluateQuorum(acking, 3, {"r0", "r5"}).ok);
  EXPECT_FALSE(EvaluateQuorum(acking, 3, {"r0", "r1"}).ok) << "the failed node no longer counts";
}

TEST(Quorum, DegradedListsOnlyGroupsThatMissed) {
  auto acking = Acking({{"g0", {"a"}}, {"g1", {"b"}}, {"g2", {}}});
  QuorumResult r = EvaluateQuorum(acking, 1, {"a"});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.degraded_groups, (std::vector<std::string>{"g1"}));
  EXPECT_FALSE(EvaluateQuorum(acking, 1, {}).ok);
}

}  // namespace
}  // namespace miroir
