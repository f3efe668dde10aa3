#include "coordinator/cutover.h"

#include <gtest/gtest.h>

#include <map>

namespace miroir::coordinator::cutover {
namespace {

Watermarks Marks(const std::vector<std::pair<std::string, std::string>>& node_inc) {
  Watermarks out;
  for (const auto& [n, inc] : node_inc) {
    v1::Watermark* w = out.Add();
    w->set_node(n);
    w->set_incarnation(inc);
  }
  return out;
}

TEST(Cutover, StallFiresOnlyPastTheLimit) {
  const absl::Duration limit = absl::Milliseconds(500);
  EXPECT_FALSE(StallExceeded(1000, 1500, limit));  // exactly the limit: not yet
  EXPECT_TRUE(StallExceeded(1000, 1501, limit));
  EXPECT_FALSE(StallExceeded(1000, 1200, limit));
}

TEST(Cutover, NothingPausedNeverStalls) {
  EXPECT_FALSE(StallExceeded(0, 1 << 30, absl::Seconds(1)));
}

TEST(Cutover, StallDeadlineIsTheFirstInstantTheStallFires) {
  const absl::Duration limit = absl::Milliseconds(750);
  const int64_t deadline = StallDeadlineMs(2000, limit);
  EXPECT_FALSE(StallExceeded(2000, deadline - 1, limit));
  EXPECT_TRUE(StallExceeded(2000, deadline, limit));
}

TEST(Cutover, WithoutFailedKeepsOrderAndDropsFailedNodes) {
  EXPECT_EQ(WithoutFailed(Strings{"c", "a", "b"}, {"a"}), (Strings{"c", "b"}));
  EXPECT_TRUE(WithoutFailed(Strings{"a"}, {"a"}).empty());
}

TEST(Cutover, CountsOnlyFencesWithTheCopiedIncarnation) {
  Watermarks copied = Marks({{"a", "i1"}, {"b", "i1"}, {"c", "i1"}});
  Watermarks fences = Marks({{"a", "i1"}, {"b", "i2"}});  // b restarted empty, c unreachable
  EXPECT_EQ(FencedWithCurrentWatermark(copied, fences), 1u);
}

TEST(Cutover, FencedCountIgnoresNodesOutsideTheFilter) {
  Watermarks copied = Marks({{"a", "i1"}, {"b", "i1"}});
  Watermarks fences = Marks({{"a", "i1"}, {"b", "i1"}});
  const Strings only = {"b"};
  EXPECT_EQ(FencedWithCurrentWatermark(copied, fences, &only), 1u);
  EXPECT_EQ(FencedWithCurrentWatermark(copied, fences), 2u);
}

TEST(Cutover, FinalDeltaReadsOnlyFencedSources) {
  Watermarks fences = Marks({{"n1", "x"}, {"a", "x"}, {"b", "x"}});
  EXPECT_EQ(FencedSources(fences, {"b", "a", "z"}), (Strings{"a", "b"}));
}

TEST(Cutover, AcksAreNotTrustedBeforeReady) {
  std::map<uint64_t, bool> acked = {{5, true}};
  AckLookup lookup = [&](uint64_t e) { return acked[e]; };
  EXPECT_FALSE(Acked(false, 5, lookup));
  EXPECT_FALSE(Acked(false, 0, lookup));
  EXPECT_TRUE(Acked(true, 5, lookup));
  EXPECT_FALSE(Acked(true, 6, lookup));
  EXPECT_TRUE(Acked(true, 0, lookup));  // nothing published: nothing to wait for
}

}  // namespace
}  // namespace miroir::coordinator::cutover
