// The read side of DESIGN §4 as pure decisions: the read set of a shard and the
// highest-version-among-q rule, with a fake per-node read.
#include "worker/read_set.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace miroir {
namespace {

v1::ShardRoute Route(const std::map<std::string, std::vector<std::string>>& owners) {
  v1::ShardRoute r;
  r.set_sets_are_owners(true);
  for (const auto& [g, nodes] : owners) {
    auto* o = r.add_owners();
    o->set_group(g);
    for (const auto& n : nodes) o->add_nodes(n);
  }
  return r;
}

auto None() {
  return [](const std::string&) { return false; };
}
auto In(std::set<std::string> s) {
  return [s](const std::string& n) { return s.count(n) > 0; };
}

std::vector<std::string> NodesOf(const std::vector<GroupReadSet>& sets, const std::string& g) {
  for (const auto& s : sets) {
    if (s.group == g) return s.nodes;
  }
  return {};
}

StoredDoc Doc(uint64_t hlc, bool tombstone = false, uint64_t writer = 1) {
  StoredDoc d;
  d.pk = "k";
  d.version = Version{hlc, writer};
  d.tombstone = tombstone;
  d.body = tombstone ? "" : "{\"v\":" + std::to_string(hlc) + "}";
  return d;
}

// A fake node answer per node: a doc, nothing (nullopt), or an error.
struct FakeNodes {
  std::map<std::string, absl::StatusOr<std::optional<StoredDoc>>> answers;
  std::vector<std::string> asked;
  absl::StatusOr<std::optional<StoredDoc>> operator()(const std::string& n) {
    asked.push_back(n);
    auto it = answers.find(n);
    if (it == answers.end()) return absl::UnavailableError("down");
    return it->second;
  }
};

ReadOutcome Read(const std::vector<GroupReadSet>& groups, uint32_t rf, uint64_t token,
                 FakeNodes* nodes) {
  return QuorumRead(groups, rf, token, [nodes](const std::string& n) { return (*nodes)(n); });
}

TEST(ReadSet, OwnersMinusFailedAndExcludedNodesGroupsLeftEmptyDropped) {
  v1::ShardRoute r = Route({{"g0", {"a", "b", "c"}}, {"g1", {"x"}}});
  auto sets = ReadSetOf(r, In({"b"}), In({"x"}));
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].group, "g0");
  EXPECT_EQ(sets[0].nodes, (std::vector<std::string>{"a", "c"}));
}

TEST(ReadSet, UsesThePublishedReadSetWhenTheSetsAreExplicit) {
  // A rejoining node stays an owner; the coordinator leaves it out of the read set.
  v1::ShardRoute r = Route({{"g0", {"a", "r"}}, {"g1", {"x"}}});
  r.set_sets_are_owners(false);
  auto* g0 = r.add_read_set();
  g0->set_group("g0");
  g0->add_nodes("a");
  auto* g1 = r.add_read_set();
  g1->set_group("g1");
  g1->add_nodes("x");
  auto sets = ReadSetOf(r, None(), None());
  EXPECT_EQ(NodesOf(sets, "g0"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(NodesOf(sets, "g1"), (std::vector<std::string>{"x"}));
}

// A shard pass excludes every node of the shard: the read then asks every
// non-failed node of every group and needs all their answers — the delete one
// group's quorum acknowledged wins over the other group that missed it; one node
// silent is no answer.
TEST(ReadSet, AWholeShardUnderRepairIsReadFromEveryNodeAndNeedsThemAll) {
  v1::ShardRoute r = Route({{"g0", {"a", "b"}}, {"g1", {"x", "y"}}});
  EXPECT_TRUE(ReadSetOf(r, None(), [](const std::string&) { return true; }).empty());
  GroupReadSet all = WholeShardReadSet(r, In({"y"}));
  EXPECT_EQ(all.nodes, (std::vector<std::string>{"a", "b", "x"}));
  const uint32_t rf = static_cast<uint32_t>(2 * all.nodes.size());
  EXPECT_EQ(ReadQuorum(rf, all.nodes.size()), 3u);
  FakeNodes nodes;
  nodes.answers["a"] = std::optional<StoredDoc>(Doc(10));
  nodes.answers["b"] = std::optional<StoredDoc>(Doc(10));
  nodes.answers["x"] = std::optional<StoredDoc>(Doc(20, /*tombstone=*/true));
  ReadOutcome out = Read({all}, rf, 0, &nodes);
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kQuorum);
  EXPECT_EQ(out.answer.node, "x");
  nodes.answers.erase("x");  // x silent: the newest entry may be the one not heard
  EXPECT_NE(Read({all}, rf, 0, &nodes).kind, ReadOutcome::Kind::kQuorum);
}

TEST(ReadSet, ReadQuorumIsAMajorityOfRfOrTheWholeSmallerSet) {
  EXPECT_EQ(ReadQuorum(1, 1), 1u);
  EXPECT_EQ(ReadQuorum(2, 2), 2u);
  EXPECT_EQ(ReadQuorum(3, 3), 2u);
  EXPECT_EQ(ReadQuorum(3, 1), 1u);  // two of three excluded: the one left
  EXPECT_EQ(ReadQuorum(5, 5), 3u);
  EXPECT_EQ(ReadQuorum(3, 0), 0u);
}

TEST(QuorumRead, AReplicaThatMissedADeleteIsOutvotedByTheQuorum) {
  // RF 3: a holds the old document (it missed the delete), b and c the tombstone.
  FakeNodes nodes;
  nodes.answers["a"] = std::optional<StoredDoc>(Doc(10));
  nodes.answers["b"] = std::optional<StoredDoc>(Doc(20, /*tombstone=*/true));
  nodes.answers["c"] = std::optional<StoredDoc>(Doc(20, /*tombstone=*/true));
  ReadOutcome out = Read({{"g0", {"a", "b", "c"}}}, 3, 0, &nodes);
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kQuorum);
  ASSERT_TRUE(out.answer.doc.has_value());
  EXPECT_TRUE(out.answer.doc->tombstone);
  EXPECT_EQ(out.answer.node, "b");
  EXPECT_EQ(nodes.asked, (std::vector<std::string>{"a", "b"}));  // q = 2, no more
}

TEST(QuorumRead, ANodeWithoutTheKeyIsOlderThanAnyVersion) {
  FakeNodes nodes;
  nodes.answers["a"] = std::optional<StoredDoc>();
  nodes.answers["b"] = std::optional<StoredDoc>(Doc(5));
  ReadOutcome out = Read({{"g0", {"a", "b"}}}, 2, 0, &nodes);
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kQuorum);
  EXPECT_EQ(out.answer.node, "b");
  // Same version: the writer id breaks the tie.
  nodes.answers["a"] = std::optional<StoredDoc>(Doc(5, false, /*writer=*/9));
  out = Read({{"g0", {"a", "b"}}}, 2, 0, &nodes);
  EXPECT_EQ(out.answer.node, "a");
}

TEST(QuorumRead, AnAnswerlessNodeIsSkippedForTheNextOfTheGroup) {
  FakeNodes nodes;  // a is down
  nodes.answers["b"] = std::optional<StoredDoc>(Doc(7));
  nodes.answers["c"] = std::optional<StoredDoc>(Doc(8));
  ReadOutcome out = Read({{"g0", {"a", "b", "c"}}}, 3, 0, &nodes);
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kQuorum);
  EXPECT_EQ(out.answer.node, "c");
  EXPECT_FALSE(out.fenced);
}

TEST(QuorumRead, AGroupShortOfItsQuorumGivesWayToTheNextGroup) {
  FakeNodes nodes;  // g0: only a answers of a, b (RF 2 needs both)
  nodes.answers["a"] = std::optional<StoredDoc>(Doc(3));
  nodes.answers["x"] = std::optional<StoredDoc>(Doc(2));
  nodes.answers["y"] = std::optional<StoredDoc>(Doc(2));
  ReadOutcome out = Read({{"g0", {"a", "b"}}, {"g1", {"x", "y"}}}, 2, 0, &nodes);
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kQuorum);
  EXPECT_EQ(out.answer.node, "x");
}

TEST(QuorumRead, WithNoQuorumAnywhereTheHighestOfAllAnswersIsPartial) {
  FakeNodes nodes;
  nodes.answers["a"] = std::optional<StoredDoc>(Doc(3));
  nodes.answers["x"] = std::optional<StoredDoc>(Doc(4));
  ReadOutcome out = Read({{"g0", {"a", "b"}}, {"g1", {"x", "y"}}}, 2, 0, &nodes);
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kPartial);
  EXPECT_EQ(out.answer.node, "x");
}

TEST(QuorumRead, WithATokenOnlyAVersionAtOrAboveItCounts) {
  // g0's quorum holds 10; the client's write (15) was acknowledged by g1 alone.
  FakeNodes nodes;
  nodes.answers["a"] = std::optional<StoredDoc>(Doc(10));
  nodes.answers["x"] = std::optional<StoredDoc>(Doc(15));
  ReadOutcome out = Read({{"g0", {"a"}}, {"g1", {"x"}}}, 1, 15, &nodes);
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kQuorum);
  EXPECT_EQ(out.answer.node, "x");
  // Nobody holds it yet: stale, not an older answer.
  out = Read({{"g0", {"a"}}}, 1, 15, &nodes);
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kStale);
  // A node without the key never satisfies a token.
  nodes.answers["a"] = std::optional<StoredDoc>();
  out = Read({{"g0", {"a"}}}, 1, 1, &nodes);
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kStale);
}

TEST(QuorumRead, AFencedNodeIsReportedAndNoAnswerIsNone) {
  FakeNodes nodes;
  nodes.answers["a"] = absl::FailedPreconditionError("fenced");
  ReadOutcome out = Read({{"g0", {"a"}}}, 1, 0, &nodes);
  EXPECT_TRUE(out.fenced);
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kNone);
  out = Read({}, 1, 0, &nodes);  // every node excluded
  EXPECT_EQ(out.kind, ReadOutcome::Kind::kNone);
}

TEST(ReadSet, ATombstoneOrAnExpiredDocumentIsNotLive) {
  EXPECT_TRUE(IsLiveDoc(Doc(1), 100));
  EXPECT_FALSE(IsLiveDoc(Doc(1, /*tombstone=*/true), 100));
  StoredDoc d = Doc(1);
  d.expires_at_ms = 100;
  EXPECT_FALSE(IsLiveDoc(d, 100));
  EXPECT_TRUE(IsLiveDoc(d, 99));
}

}  // namespace
}  // namespace miroir
