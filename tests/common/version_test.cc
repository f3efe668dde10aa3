#include "common/version.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <thread>

namespace miroir {
namespace {

TEST(HybridClock, StrictlyIncreasingWhenThePhysicalClockGoesBackwards) {
  ManualClock clock(1'700'000'000'000);
  HybridClock hlc(&clock, 42);
  Version prev = hlc.Next();
  EXPECT_EQ(prev.writer, 42u);
  EXPECT_EQ(prev.PhysicalMs(), 1'700'000'000'000);
  for (int i = 0; i < 1000; ++i) {
    if (i % 100 == 50) clock.Advance(-5000);  // NTP step back
    if (i % 100 == 99) clock.Advance(7);
    Version v = hlc.Next();
    EXPECT_GT(v.hlc, prev.hlc) << "step " << i;
    EXPECT_GT(v, prev);
    prev = v;
  }
  // The physical part never went back with the clock.
  EXPECT_GE(prev.PhysicalMs(), 1'700'000'000'000);
}

TEST(HybridClock, FollowsThePhysicalClockWhenItIsAhead) {
  ManualClock clock(1'000);
  HybridClock hlc(&clock, 1);
  hlc.Next();
  clock.Set(2'000);
  EXPECT_EQ(hlc.Next().hlc, Version::Pack(2'000, 0));
  EXPECT_EQ(hlc.Next().hlc, Version::Pack(2'000, 1));
}

TEST(HybridClock, NextExceedsTheToken) {
  ManualClock clock(1'000);
  HybridClock hlc(&clock, 1);
  const uint64_t token = Version::Pack(50'000, 17);  // from a faster worker
  Version v = hlc.Next(token);
  EXPECT_GT(v.hlc, token);
  EXPECT_GT(hlc.Next().hlc, v.hlc);
  // A token below what the clock already gave changes nothing but stays exceeded.
  Version w = hlc.Next(5);
  EXPECT_GT(w.hlc, v.hlc);
}

TEST(HybridClock, ObserveAdvancesPastAVersionSeenElsewhere) {
  ManualClock clock(1'000);
  HybridClock hlc(&clock, 1);
  const uint64_t seen = Version::Pack(99'000, 3);
  hlc.Observe(seen);
  EXPECT_GE(hlc.Last(), seen);
  EXPECT_GT(hlc.Next().hlc, seen);
  hlc.Observe(Version::Pack(10, 0));  // an older one does not move it back
  EXPECT_GT(hlc.Next().hlc, seen);
}

TEST(HybridClock, ConcurrentCallersNeverGetTheSameVersion) {
  ManualClock clock(1'000);
  HybridClock hlc(&clock, 9);
  std::vector<std::vector<uint64_t>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) got[t].push_back(hlc.Next().hlc);
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> all;
  for (const auto& g : got) {
    EXPECT_TRUE(std::is_sorted(g.begin(), g.end()));
    all.insert(g.begin(), g.end());
  }
  EXPECT_EQ(all.size(), 20000u);
}

TEST(HybridClock, RandomWriterIdsAreNonZeroAndDiffer) {
  std::set<uint64_t> ids;
  for (int i = 0; i < 100; ++i) {
    uint64_t id = HybridClock::RandomWriterId();
    EXPECT_NE(id, 0u);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100u);
}

TEST(Version, ToKeyOrderIsVersionOrderAndRoundTrips) {
  std::mt19937_64 rng(11);
  std::vector<Version> vs = {{0, 0}, {0, 1}, {1, 0}, {~0ULL, ~0ULL}, {Version::Pack(5, 1), 7}};
  for (int i = 0; i < 500; ++i) {
    // Mix of near-equal and random values so both fields decide some comparisons.
    const uint64_t hlc = (i % 3 == 0) ? rng() : (rng() % 4);
    vs.push_back({hlc, rng() % 5});
  }
  for (const Version& a : vs) {
    const std::string ka = a.ToKey();
    EXPECT_EQ(ka.size(), 33u);
    Version back;
    ASSERT_TRUE(Version::FromKey(ka, &back)) << ka;
    EXPECT_EQ(back, a);
    for (const Version& b : vs) {
      EXPECT_EQ(a < b, ka < b.ToKey()) << ka << " vs " << b.ToKey();
    }
  }
}

TEST(Version, FromKeyRefusesMalformedText) {
  Version v;
  for (const char* bad :
       {"", "0000000000000001", "0000000000000001-0000000000000002",
        "000000000000000G:0000000000000002", "0000000000000001:00000000000002",
        "0000000000000001:00000000000000020", "0000000000000001:000000000000000A"}) {
    EXPECT_FALSE(Version::FromKey(bad, &v)) << bad;
  }
}

TEST(Version, PackAndPhysical) {
  Version v{Version::Pack(123456789, 0x1234), 1};
  EXPECT_EQ(v.PhysicalMs(), 123456789);
  EXPECT_EQ(v.hlc & 0xFFFF, 0x1234u);
  EXPECT_TRUE((Version{}).IsZero());
  EXPECT_FALSE(v.IsZero());
}

}  // namespace
}  // namespace miroir
