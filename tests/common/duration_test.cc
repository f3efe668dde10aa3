#include "common/duration.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

TEST(ParseDuration, AcceptsEveryUnitAndCombinations) {
  EXPECT_EQ(*ParseDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("2s"), absl::Seconds(2));
  EXPECT_EQ(*ParseDuration("10m"), absl::Minutes(10));
  EXPECT_EQ(*ParseDuration("1h"), absl::Hours(1));
  EXPECT_EQ(*ParseDuration("7d"), absl::Hours(7 * 24));
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("1m1s1ms"), absl::Milliseconds(61001));
  EXPECT_EQ(*ParseDuration("1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseDuration(" 2s "), absl::Seconds(2));
  EXPECT_EQ(*ParseDuration("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseDuration("0s"), absl::ZeroDuration());
}

TEST(ParseDuration, RefusesMalformedAndNegativeText) {
  for (const char* bad : {"", " ", "5", "s", "-1s", "1x", "1h30", "1.s", ".5s", "1 h", "abc",
                          "99999999999999999999d", "1hh"}) {
    auto d = ParseDuration(bad);
    ASSERT_FALSE(d.ok()) << "'" << bad << "' parsed as " << *d;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("malformed duration '"), std::string::npos);
  }
}

TEST(ParseSchedule, EveryIsOptional) {
  EXPECT_EQ(*ParseSchedule("every 6h"), absl::Hours(6));
  EXPECT_EQ(*ParseSchedule("6h"), absl::Hours(6));
  EXPECT_EQ(*ParseSchedule("  every   30m "), absl::Minutes(30));
  EXPECT_FALSE(ParseSchedule("every").ok());
  EXPECT_FALSE(ParseSchedule("every6h").ok());
  EXPECT_FALSE(ParseSchedule("every 0s").ok());
  EXPECT_FALSE(ParseSchedule("sometimes").ok());
}

TEST(FormatDuration, ShortestTextRoundTrips) {
  EXPECT_EQ(miroir::FormatDuration(absl::Milliseconds(500)), "500ms");
  EXPECT_EQ(miroir::FormatDuration(absl::Minutes(90)), "1h30m");
  EXPECT_EQ(miroir::FormatDuration(absl::Hours(24 * 7)), "7d");
  EXPECT_EQ(miroir::FormatDuration(absl::ZeroDuration()), "0s");
  EXPECT_EQ(miroir::FormatDuration(absl::Milliseconds(61001)), "1m1s1ms");
  for (absl::Duration d : {absl::Milliseconds(1), absl::Seconds(59), absl::Hours(25),
                           absl::Milliseconds(90061001), absl::Microseconds(1500)}) {
    auto back = ParseDuration(miroir::FormatDuration(d));
    ASSERT_TRUE(back.ok()) << miroir::FormatDuration(d);
    EXPECT_EQ(*back, d);
  }
}

}  // namespace
}  // namespace miroir
