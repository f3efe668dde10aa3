#include "common/routing.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

namespace miroir {
namespace {

std::vector<std::string> Nodes(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

TEST(ShardForKey, PublicFixturesOfTheOriginalProxy) {
  EXPECT_EQ(ShardForKey("user:12345", 64), 15u);
  EXPECT_EQ(ShardForKey("product:abc", 64), 24u);
  EXPECT_EQ(ShardForKey("order:99999", 64), 4u);
  EXPECT_EQ(ShardForKey("test", 16), 10u);
  EXPECT_EQ(ShardForKey("hello", 32), 6u);
}

TEST(ShardForKey, IsXxh64OfKeyAndTerminatorModS) {
  const std::string key = "user:12345";
  std::string bytes = key + '\xFF';
  const uint64_t h = XXH64(bytes.data(), bytes.size(), 0);
  EXPECT_EQ(KeyHash(key), h);
  EXPECT_EQ(ShardForKey(key, 4096), h % 4096);
  EXPECT_EQ(ShardForKey("", 7), XXH64("\xFF", 1, 0) % 7);
}

TEST(Score, IsXxh64OfLittleEndianShardNodeAndTerminator) {
  const uint32_t shard = 0x01020304;
  std::string bytes = {'\x04', '\x03', '\x02', '\x01'};
  bytes += "node-7";
  bytes += '\xFF';
  EXPECT_EQ(Score(shard, "node-7"), XXH64(bytes.data(), bytes.size(), 0));
}

TEST(Owners, IsDeterministicAndIndependentOfInputOrder) {
  auto nodes = Nodes("n", 12);
  std::mt19937 rng(7);
  for (uint32_t s = 0; s < 256; ++s) {
    auto a = Owners(s, nodes, 3);
    auto shuffled = nodes;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    EXPECT_EQ(Owners(s, shuffled, 3), a) << "shard " << s;
    EXPECT_EQ(Owners(s, nodes, 3), a);
  }
}

TEST(Owners, RankedByScoreDescendingThenNodeIdAscending) {
  auto nodes = Nodes("r", 9);
  for (uint32_t s = 0; s < 512; ++s) {
    // Reference: full sort by (score desc, id asc), take the top 4.
    auto ref = nodes;
    std::sort(ref.begin(), ref.end(), [s](const std::string& a, const std::string& b) {
      const uint64_t sa = Score(s, a), sb = Score(s, b);
      if (sa != sb) return sa > sb;
      return a < b;
    });
    ref.resize(4);
    auto got = Owners(s, nodes, 4);
    EXPECT_EQ(got, ref) << "shard " << s;
    for (size_t i = 1; i < got.size(); ++i) EXPECT_GE(Score(s, got[i - 1]), Score(s, got[i]));
  }
}

TEST(Owners, EqualScoresAreOrderedByNodeId) {
  // A 64-bit score tie between distinct ids cannot be constructed, but the same id
  // listed twice scores equal: the tie path must keep both, in id order, and never
  // prefer an equal-score duplicate over a higher-scoring node.
  for (uint32_t s = 0; s < 64; ++s) {
    auto owners = Owners(s, {"b", "a", "b", "a"}, 4);
    ASSERT_EQ(owners.size(), 4u);
    const bool a_first = Score(s, "a") > Score(s, "b");
    EXPECT_EQ(owners, a_first ? (std::vector<std::string>{"a", "a", "b", "b"})
                              : (std::vector<std::string>{"b", "b", "a", "a"}));
  }
}

TEST(Owners, ReturnsTheWholeGroupWhenSmallerThanRf) {
  EXPECT_EQ(Owners(3, {"x", "y"}, 5).size(), 2u);
  EXPECT_TRUE(Owners(3, {}, 2).empty());
}

TEST(AssignShard, RunsWithinEachGroupOnly) {
  std::vector<GroupNodes> groups = {{"g0", Nodes("a", 5)}, {"g1", Nodes("b", 7)}};
  std::vector<GroupNodes> bigger_g1 = {{"g0", Nodes("a", 5)}, {"g1", Nodes("b", 30)}};
  for (uint32_t s = 0; s < 1024; ++s) {
    auto assign = AssignShard(s, groups, 2);
    ASSERT_EQ(assign.size(), 2u);
    EXPECT_EQ(assign[0].group, "g0");
    EXPECT_EQ(assign[0].owners, Owners(s, groups[0].nodes, 2));
    EXPECT_EQ(assign[1].owners, Owners(s, groups[1].nodes, 2));
    for (const auto& o : assign[0].owners) EXPECT_EQ(o[0], 'a');
    for (const auto& o : assign[1].owners) EXPECT_EQ(o[0], 'b');
    // Another group's membership never changes this group's owners.
    EXPECT_EQ(AssignShard(s, bigger_g1, 2)[0].owners, assign[0].owners);
    // Write targets: union over groups, group order.
    auto targets = WriteTargets(s, groups, 2);
    std::vector<std::string> expected = assign[0].owners;
    expected.insert(expected.end(), assign[1].owners.begin(), assign[1].owners.end());
    EXPECT_EQ(targets, expected);
  }
}

TEST(AssignShard, SpreadsShardsEvenlyOverAGroup) {
  auto nodes = Nodes("n", 8);
  std::map<std::string, int> held;
  const uint32_t S = 4096, rf = 2;
  for (uint32_t s = 0; s < S; ++s) {
    for (const auto& o : Owners(s, nodes, rf)) ++held[o];
  }
  ASSERT_EQ(held.size(), nodes.size());
  for (const auto& [n, count] : held) {
    EXPECT_NEAR(count, S * rf / 8.0, S * rf / 8.0 * 0.15) << n;
  }
}

class Movement : public ::testing::Test {
 protected:
  static constexpr uint32_t kShards = 4096;
  static constexpr uint32_t kRf = 2;
  static constexpr int kNg = 8;
  std::vector<GroupNodes> before_ = {{"g0", Nodes("a", kNg)}, {"g1", Nodes("b", 5)}};
};

TEST_F(Movement, AddingANodeMovesOnlyChangedShardsAllToTheNewNode) {
  auto after = before_;
  after[0].nodes.push_back("a-new");
  auto moves = DiffOwners(kShards, kRf, before_, after);

  std::set<uint32_t> moved;
  for (const auto& m : moves) {
    EXPECT_EQ(m.group, "g0") << "another group was touched, shard " << m.shard;
    moved.insert(m.shard);
    std::set<std::string> o(m.old_owners.begin(), m.old_owners.end());
    std::set<std::string> n(m.new_owners.begin(), m.new_owners.end());
    EXPECT_EQ(n.count("a-new"), 1u) << "shard " << m.shard << " moved but not to the new node";
    EXPECT_EQ(o.count("a-new"), 0u);
    // Exactly one replica changes: the new node replaces one old owner.
    std::vector<std::string> leaving;
    std::set_difference(o.begin(), o.end(), n.begin(), n.end(), std::back_inserter(leaving));
    EXPECT_EQ(leaving.size(), 1u) << "shard " << m.shard;
    EXPECT_EQ(m.old_owners, Owners(m.shard, before_[0].nodes, kRf));
    EXPECT_EQ(m.new_owners, Owners(m.shard, after[0].nodes, kRf));
  }
  // Every shard not in the diff keeps its owner set in every group.
  for (uint32_t s = 0; s < kShards; ++s) {
    if (moved.count(s)) continue;
    auto a = Owners(s, before_[0].nodes, kRf), b = Owners(s, after[0].nodes, kRf);
    EXPECT_EQ(std::set<std::string>(a.begin(), a.end()), std::set<std::string>(b.begin(), b.end()))
        << "shard " << s << " changed owners but is not in the diff";
  }
  // About S·RF/(Ng+1) replicas move (binomial; ±10% is over 3 standard deviations).
  const double expected = double(kShards) * kRf / (kNg + 1);
  EXPECT_NEAR(double(moves.size()), expected, expected * 0.10);
}

TEST_F(Movement, RemovingANodeMovesOnlyWhatItHeld) {
  auto after = before_;
  const std::string gone = "a3";
  after[0].nodes.erase(std::find(after[0].nodes.begin(), after[0].nodes.end(), gone));
  auto moves = DiffOwners(kShards, kRf, before_, after);

  size_t held = 0;
  for (uint32_t s = 0; s < kShards; ++s) {
    auto o = Owners(s, before_[0].nodes, kRf);
    if (std::find(o.begin(), o.end(), gone) != o.end()) ++held;
  }
  EXPECT_EQ(moves.size(), held);
  for (const auto& m : moves) {
    EXPECT_EQ(m.group, "g0");
    std::set<std::string> o(m.old_owners.begin(), m.old_owners.end());
    std::set<std::string> n(m.new_owners.begin(), m.new_owners.end());
    EXPECT_EQ(o.count(gone), 1u) << "shard " << m.shard << " moved without the removed node";
    EXPECT_EQ(n.count(gone), 0u);
    // The surviving owners stay; one new node joins.
    std::vector<std::string> kept;
    std::set_intersection(o.begin(), o.end(), n.begin(), n.end(), std::back_inserter(kept));
    EXPECT_EQ(kept.size(), kRf - 1) << "shard " << m.shard;
  }
}

TEST_F(Movement, AddingAndRemovingAGroupTouchesOnlyThatGroup) {
  auto after = before_;
  after.push_back({"g2", Nodes("c", 3)});
  auto added = DiffOwners(kShards, kRf, before_, after);
  ASSERT_EQ(added.size(), kShards);
  for (uint32_t s = 0; s < kShards; ++s) {
    EXPECT_EQ(added[s].shard, s);
    EXPECT_EQ(added[s].group, "g2");
    EXPECT_TRUE(added[s].old_owners.empty());
    EXPECT_EQ(added[s].new_owners, Owners(s, after[2].nodes, kRf));
  }
  auto removed = DiffOwners(kShards, kRf, after, before_);
  ASSERT_EQ(removed.size(), kShards);
  for (const auto& m : removed) {
    EXPECT_EQ(m.group, "g2");
    EXPECT_TRUE(m.new_owners.empty());
  }
}

TEST_F(Movement, SameTopologyOrPureRankChangeIsNoMove) {
  EXPECT_TRUE(DiffOwners(kShards, kRf, before_, before_).empty());
  // RF covering the whole group: every node owns every shard whatever the ranks.
  std::vector<GroupNodes> small = {{"g0", {"x", "y"}}};
  std::vector<GroupNodes> reordered = {{"g0", {"y", "x"}}};
  EXPECT_TRUE(DiffOwners(64, 2, small, reordered).empty());
}

}  // namespace
}  // namespace miroir

namespace miroir {
namespace {

TEST(OwnerTable, EqualsWriteTargetsForEveryShard) {
  std::vector<GroupNodes> groups = {{"g0", Nodes("a", 9)}, {"g1", Nodes("b", 4)}};
  OwnerTable table(1024, groups, 2);
  EXPECT_EQ(table.shards(), 1024u);
  for (uint32_t s = 0; s < 1024; ++s) EXPECT_EQ(table.WriteTargets(s), WriteTargets(s, groups, 2));
  EXPECT_EQ(table.WriteTargetsForKey("user:12345"),
            WriteTargets(ShardForKey("user:12345", 1024), groups, 2));
}

TEST(Owners, LargeRfUsesTheSamePartialRanking) {
  auto nodes = Nodes("n", 20);
  for (uint32_t s = 0; s < 128; ++s) {
    auto ten = Owners(s, nodes, 10);  // beyond the small-k path
    auto three = Owners(s, nodes, 3);
    ASSERT_EQ(ten.size(), 10u);
    EXPECT_EQ(std::vector<std::string>(ten.begin(), ten.begin() + 3), three);
  }
}

TEST(KeyHash, LongKeysTakeTheStreamingPathWithTheSameHash) {
  const std::string key(600, 'k');
  std::string bytes = key + '\xFF';
  EXPECT_EQ(KeyHash(key), XXH64(bytes.data(), bytes.size(), 0));
  const std::string id(300, 'n');
  std::string sbytes = std::string("\x07\x00\x00\x00", 4) + id + '\xFF';
  EXPECT_EQ(Score(7, id), XXH64(sbytes.data(), sbytes.size(), 0));
}

}  // namespace
}  // namespace miroir
