#include "coordinator/reshard_gates.h"

#include <gtest/gtest.h>

namespace miroir::coordinator {
namespace {

// Times of day on 2026-11-25, unix ms.
constexpr int64_t kDay = 1'795'564'800'000;  // 2026-11-25 00:00 UTC
constexpr int64_t kTenUtc = kDay + 10 * 3'600'000LL;
constexpr int64_t kThreeUtc = kDay + 3 * 3'600'000LL;

ReshardStartRequest Req() {
  ReshardStartRequest r;
  r.index = "movies";
  r.current_shards = 8;
  r.new_shards = 16;
  return r;
}

CoordinatorConfig NightOnly() {
  CoordinatorConfig c;
  c.schedule_windows["night"] = "02:00-05:00";
  c.resharding.allowed_windows = {"night"};
  return c;
}

TEST(ReshardGatesTest, AcceptsAValidStartInsideTheWindow) {
  std::vector<std::string> warnings;
  EXPECT_TRUE(CheckReshardStart(Req(), NightOnly(), {}, false, kThreeUtc, &warnings).ok());
  EXPECT_TRUE(warnings.empty());
}

TEST(ReshardGatesTest, DisabledRefuses) {
  CoordinatorConfig c;
  c.resharding.enabled = false;
  auto s = CheckReshardStart(Req(), c, {}, false, kTenUtc, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("resharding.enabled"), std::string::npos);
}

TEST(ReshardGatesTest, BadShardsNameTheField) {
  CoordinatorConfig c;
  ReshardStartRequest r = Req();
  r.new_shards = 0;
  auto s = CheckReshardStart(r, c, {}, false, kTenUtc, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("shards:", 0), 0u);
  r.new_shards = 8;
  s = CheckReshardStart(r, c, {}, false, kTenUtc, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("already has 8 shards"), std::string::npos);
  r = Req();
  r.index = "";
  EXPECT_EQ(CheckReshardStart(r, c, {}, false, kTenUtc, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReshardGatesTest, RetentionRefusesUntilComplete) {
  CoordinatorConfig c;
  v1::ReshardRecord prev;
  prev.set_id(3);
  prev.set_index("movies");
  prev.set_state(v1::RESHARD_RETENTION);
  auto s = CheckReshardStart(Req(), c, {prev}, false, kTenUtc, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("`miroir-ctl reshard complete --index movies`"), std::string::npos);
  // Another index's retention does not block; a finished one does not either.
  prev.set_index("books");
  EXPECT_TRUE(CheckReshardStart(Req(), c, {prev}, false, kTenUtc, nullptr).ok());
  prev.set_index("movies");
  prev.set_state(v1::RESHARD_DONE);
  EXPECT_TRUE(CheckReshardStart(Req(), c, {prev}, false, kTenUtc, nullptr).ok());
  prev.set_state(v1::RESHARD_BACKFILL);
  s = CheckReshardStart(Req(), c, {prev}, false, kTenUtc, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("state backfill"), std::string::npos);
}

TEST(ReshardGatesTest, ActiveMoveRefuses) {
  auto s = CheckReshardStart(Req(), CoordinatorConfig{}, {}, true, kTenUtc, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("move"), std::string::npos);
}

TEST(ReshardGatesTest, OutsideWindowNamesTimeAndWindowsForceWarns) {
  std::vector<std::string> warnings;
  auto s = CheckReshardStart(Req(), NightOnly(), {}, false, kTenUtc, &warnings);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("10:00 UTC"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("night 02:00-05:00"), std::string::npos) << s.message();
  EXPECT_TRUE(warnings.empty());

  ReshardStartRequest r = Req();
  r.force = true;
  EXPECT_TRUE(CheckReshardStart(r, NightOnly(), {}, false, kTenUtc, &warnings).ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("forced"), std::string::npos);
}

TEST(ReshardGatesTest, UnknownWindowNameIsInvalid) {
  CoordinatorConfig c;
  c.resharding.allowed_windows = {"weekend"};
  auto s = CheckReshardWindow(c, kTenUtc, false, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("resharding.allowed_windows:", 0), 0u);
}

}  // namespace
}  // namespace miroir::coordinator
