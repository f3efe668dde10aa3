#include "worker/miss_queue.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace miroir {
namespace {

// node -> shard -> count, and the flagged nodes, of a report.
struct Parsed {
  std::map<std::string, std::map<uint32_t, uint64_t>> entries;
  std::set<std::string> flagged;
};

Parsed Parse(const v1::MissReport& r) {
  Parsed p;
  for (const auto& m : r.misses()) {
    if (m.all_shards()) {
      EXPECT_TRUE(m.index().empty());
      p.flagged.insert(m.node());
    } else {
      p.entries[m.node()][m.shard()] += m.count();
    }
  }
  return p;
}

TEST(MissQueue, CountsPerNodeAndShardAndTakeEmptiesIt) {
  MissQueue q(10);
  EXPECT_TRUE(q.empty());
  q.Add("r0", "products", 7, 1);
  q.Add("r0", "products", 7, 1);
  q.Add("r1", "products", 7, 3);
  EXPECT_EQ(q.entries(), 2u);
  Parsed p = Parse(q.Take());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(p.entries["r0"][1], 2u);
  EXPECT_EQ(p.entries["r1"][3], 1u);
  EXPECT_TRUE(p.flagged.empty());
  EXPECT_EQ(q.Take().misses_size(), 0);
}

TEST(MissQueue, ReturnedReportIsMergedWithNewMisses) {
  MissQueue q(10);
  q.Add("r0", "products", 7, 1);
  v1::MissReport undelivered = q.Take();
  q.Add("r0", "products", 7, 1);  // while the report was out
  q.Add("r2", "products", 7, 0);
  q.Return(undelivered);
  Parsed p = Parse(q.Take());
  EXPECT_EQ(p.entries["r0"][1], 2u);
  EXPECT_EQ(p.entries["r2"][0], 1u);
}

TEST(MissQueue, DegradesToPerNodeFlagsAndNeverLosesANode) {
  MissQueue q(3);
  q.Add("r0", "products", 7, 0);
  q.Add("r0", "products", 7, 1);
  q.Add("r1", "products", 7, 0);
  // Full: r0's next shard folds all of r0 into a flag, which frees its entries.
  q.Add("r0", "products", 7, 2);
  EXPECT_EQ(q.flagged_nodes(), 1u);
  EXPECT_EQ(q.entries(), 1u);
  // A flagged node's further misses take no room.
  for (uint32_t s = 0; s < 100; ++s) q.Add("r0", "products", 7, s);
  EXPECT_EQ(q.entries(), 1u);
  // Room again for others, until full; then the new node is flagged, not dropped.
  q.Add("r1", "products", 7, 1);
  q.Add("r2", "products", 7, 1);
  EXPECT_EQ(q.entries(), 3u);
  q.Add("r3", "products", 7, 1);
  EXPECT_LE(q.entries(), 3u);
  Parsed p = Parse(q.Take());
  EXPECT_EQ(p.flagged, (std::set<std::string>{"r0", "r3"}));
  EXPECT_EQ(p.entries.count("r0"), 0u);
  EXPECT_EQ(p.entries["r1"].size(), 2u);
  EXPECT_EQ(p.entries["r2"][1], 1u);
}

TEST(MissQueue, ReturnedFlagsStayFlagsAndFoldNewerEntries) {
  MissQueue q(1);
  q.Add("r0", "products", 7, 0);
  q.Add("r1", "products", 7, 0);  // full: r1 flagged
  v1::MissReport undelivered = q.Take();
  q.Add("r1", "products", 7, 5);  // fits (the queue is empty now)
  q.Return(undelivered);          // r1's flag comes back and covers shard 5
  Parsed p = Parse(q.Take());
  EXPECT_EQ(p.flagged, (std::set<std::string>{"r1"}));
  EXPECT_EQ(p.entries.count("r1"), 0u);
  // r0's entry came back too, or was flagged when there was no room: never lost.
  EXPECT_TRUE(p.entries.count("r0") > 0 || p.flagged.count("r0") > 0);
}

}  // namespace
}  // namespace miroir
