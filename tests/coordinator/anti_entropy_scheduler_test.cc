#include "coordinator/anti_entropy_scheduler.h"

#include <gtest/gtest.h>

namespace miroir::coordinator {
namespace {

TEST(AeScheduler, ChoosesOldestStableShardsUpToLimit) {
  std::vector<AeIndexState> idx = {
      {"a", false, {{0, false, 500}, {1, false, 100}, {2, false, 0}}},
      {"b", false, {{0, false, 100}}},
  };
  AeRoundPlan p = ChooseAeShards(idx, 3);
  ASSERT_EQ(p.scan.size(), 3u);
  EXPECT_EQ(p.scan[0].index, "a");
  EXPECT_EQ(p.scan[0].shard, 2u);
  EXPECT_EQ(p.scan[1].index, "a");
  EXPECT_EQ(p.scan[1].shard, 1u);
  EXPECT_EQ(p.scan[2].index, "b");
  EXPECT_TRUE(p.skipped.empty());
}

TEST(AeScheduler, SkipsMidMoveShardsAndReshardingIndexes) {
  std::vector<AeIndexState> idx = {
      {"a", false, {{0, true, 0}, {1, false, 0}}},
      {"b", true, {{0, false, 0}, {1, false, 0}}},
  };
  AeRoundPlan p = ChooseAeShards(idx, 10);
  ASSERT_EQ(p.scan.size(), 1u);
  EXPECT_EQ(p.scan[0].index, "a");
  EXPECT_EQ(p.scan[0].shard, 1u);
  EXPECT_EQ(p.skipped.size(), 3u);
}

TEST(AeScheduler, GcBound) {
  EXPECT_EQ(AeGcBoundMs(100000, 30000, 5000, true, false), 65000);
  EXPECT_EQ(AeGcBoundMs(100000, 30000, 5000, false, false), 0);  // report-only
  EXPECT_EQ(AeGcBoundMs(100000, 30000, 5000, true, true), 0);    // unstable shard
  EXPECT_EQ(AeGcBoundMs(1000, 30000, 5000, true, false), 0);     // never negative
}

TEST(AeScheduler, ParsesSchedule) {
  EXPECT_EQ(ParseAeSchedule("every 6h"), 6 * 3600 * 1000);
  EXPECT_EQ(ParseAeSchedule("every 30m"), 30 * 60 * 1000);
  EXPECT_EQ(ParseAeSchedule("every 2s"), 2000);
  EXPECT_FALSE(ParseAeSchedule("6h").has_value());
  EXPECT_FALSE(ParseAeSchedule("every 0h").has_value());
  EXPECT_FALSE(ParseAeSchedule("every h").has_value());
  EXPECT_FALSE(ParseAeSchedule("every 6x").has_value());
}

TEST(AeScheduler, GraceShorterThanScheduleIsRefusedNamingBothKeys) {
  EXPECT_EQ(ValidateAeGrace(7200000, 3600000), "");
  std::string err = ValidateAeGrace(1000, 3600000);
  EXPECT_NE(err.find("anti_entropy.tombstone_grace"), std::string::npos);
  EXPECT_NE(err.find("anti_entropy.schedule"), std::string::npos);
}

}  // namespace
}  // namespace miroir::coordinator
