#include "coordinator/schedule_window.h"

#include <gtest/gtest.h>

namespace miroir::coordinator {
namespace {

constexpr int64_t kDay = 24LL * 3600 * 1000;
// 2026-11-25T00:00:00Z.
constexpr int64_t kMidnight = 1795564800000LL;

int64_t At(int hour, int minute) { return kMidnight + (hour * 60LL + minute) * 60000; }

TEST(ParseWindowRange, ParsesAndFormats) {
  auto w = ParseWindowRange("02:00-06:00");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->start_minute, 120);
  EXPECT_EQ(w->end_minute, 360);
  EXPECT_EQ(w->Range(), "02:00-06:00");
  EXPECT_EQ(w->name, "02:00-06:00");
  EXPECT_EQ(ParseWindowRange("2:05-6:00")->Range(), "02:05-06:00");
}

TEST(ParseWindowRange, EndIsExclusive) {
  auto w = *ParseWindowRange("02:00-06:00");
  EXPECT_FALSE(w.Contains(119));
  EXPECT_TRUE(w.Contains(120));
  EXPECT_TRUE(w.Contains(359));
  EXPECT_FALSE(w.Contains(360));
}

TEST(ParseWindowRange, WrapsMidnight) {
  auto w = *ParseWindowRange("22:00-06:00");
  EXPECT_TRUE(w.Contains(22 * 60));
  EXPECT_TRUE(w.Contains(23 * 60 + 59));
  EXPECT_TRUE(w.Contains(0));
  EXPECT_TRUE(w.Contains(5 * 60 + 59));
  EXPECT_FALSE(w.Contains(6 * 60));
  EXPECT_FALSE(w.Contains(12 * 60));
  EXPECT_FALSE(w.Contains(21 * 60 + 59));
}

TEST(ParseWindowRange, RefusesBadText) {
  for (const char* bad :
       {"", "02:00", "02:00-", "-06:00", "24:00-06:00", "02:60-06:00", "2-6", "02:00-06:00-07:00",
        "ab:cd-ef:gh", "02:00-02:00", "002:00-06:00", "02:0-06:00"}) {
    auto w = ParseWindowRange(bad);
    ASSERT_FALSE(w.ok()) << bad;
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(w.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << w.status();
  }
}

TEST(ResolveWindows, NamesAndRanges) {
  std::map<std::string, std::string> named = {{"off-peak", "02:00-06:00"},
                                              {"night", "22:00-01:00"}};
  auto ws = ResolveWindows({"off-peak", "12:00-13:00", "night"}, named);
  ASSERT_TRUE(ws.ok()) << ws.status();
  ASSERT_EQ(ws->size(), 3u);
  EXPECT_EQ((*ws)[0].name, "off-peak");
  EXPECT_EQ((*ws)[0].Range(), "02:00-06:00");
  EXPECT_EQ((*ws)[1].name, "12:00-13:00");
  EXPECT_EQ((*ws)[2].Range(), "22:00-01:00");
}

TEST(ResolveWindows, UnknownNameAndBadNamedRange) {
  std::map<std::string, std::string> named = {{"broken", "2am-6am"}};
  auto unknown = ResolveWindows({"weekend"}, named);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("unknown schedule window 'weekend'"),
            std::string::npos);
  auto broken = ResolveWindows({"broken"}, named);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("schedule window 'broken'"), std::string::npos);
  auto bad_range = ResolveWindows({"25:00-26:00"}, named);
  ASSERT_FALSE(bad_range.ok());
  EXPECT_NE(bad_range.status().message().find("malformed schedule window"), std::string::npos);
}

TEST(InsideAnyWindow, EmptyMeansAnyTime) { EXPECT_TRUE(InsideAnyWindow({}, At(13, 37))); }

TEST(InsideAnyWindow, UsesTheUtcMinuteOfTheDay) {
  auto ws = *ResolveWindows({"23:30-00:30", "03:00-04:00"}, {});
  EXPECT_TRUE(InsideAnyWindow(ws, At(23, 45)));
  EXPECT_TRUE(InsideAnyWindow(ws, At(0, 10) + kDay));
  EXPECT_TRUE(InsideAnyWindow(ws, At(3, 0)));
  EXPECT_FALSE(InsideAnyWindow(ws, At(4, 0)));
  EXPECT_FALSE(InsideAnyWindow(ws, At(0, 30)));
  EXPECT_FALSE(InsideAnyWindow(ws, At(12, 0) + 3 * kDay));
}

TEST(UtcHourMinute, Formats) {
  EXPECT_EQ(UtcHourMinute(At(0, 0)), "00:00");
  EXPECT_EQ(UtcHourMinute(At(9, 5) + 59999), "09:05");
  EXPECT_EQ(UtcHourMinute(At(23, 59)), "23:59");
  EXPECT_EQ(UtcHourMinute(-1), "23:59");  // floors before 1970
}

}  // namespace
}  // namespace miroir::coordinator
