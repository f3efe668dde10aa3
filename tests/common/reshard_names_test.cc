#include "common/reshard_names.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

TEST(ReshardNamesTest, StateNamesAreTheLowerCaseOperatorsRead) {
  EXPECT_EQ(ReshardStateName(v1::RESHARD_SHADOW), "shadow");
  EXPECT_EQ(ReshardStateName(v1::RESHARD_SWAP_FINAL_DELTA), "swap_final_delta");
  EXPECT_EQ(ReshardStateName(v1::RESHARD_ROLLED_BACK), "rolled_back");
  EXPECT_EQ(ReshardStateName(v1::RESHARD_FAILED), "failed");
  EXPECT_EQ(ReshardStateName(v1::RESHARD_STATE_UNSPECIFIED), "unknown");
  EXPECT_EQ(ReshardStateName(static_cast<v1::ReshardState>(99)), "unknown");
}

TEST(ReshardNamesTest, StepNamesAreTheLowerCaseOperatorsRead) {
  EXPECT_EQ(ReshardStepName(v1::RESHARD_STEP_NONE), "");
  EXPECT_EQ(ReshardStepName(v1::RESHARD_STEP_FINAL_DELTA), "final_delta");
  EXPECT_EQ(ReshardStepName(v1::RESHARD_STEP_CATCH_UP), "catch_up");
  EXPECT_EQ(ReshardStepName(static_cast<v1::ReshardStep>(99)), "unknown");
}

TEST(ReshardNamesTest, EveryNameParsesBackToItsValue) {
  for (int i = v1::ReshardState_MIN + 1; i <= v1::ReshardState_MAX; ++i) {
    const auto s = static_cast<v1::ReshardState>(i);
    auto parsed = ParseReshardState(ReshardStateName(s));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, s);
  }
  for (int i = v1::ReshardStep_MIN; i <= v1::ReshardStep_MAX; ++i) {
    const auto s = static_cast<v1::ReshardStep>(i);
    auto parsed = ParseReshardStep(ReshardStepName(s));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, s);
  }
}

TEST(ReshardNamesTest, ParseRefusesWhatNoVersionWrote) {
  for (const char* bad : {"", "unknown", "nope", "SHADOW", "state_unspecified", "Shadow"}) {
    auto s = ParseReshardState(bad);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(ParseReshardState("nope").status().message().find("'nope'"), std::string::npos);
  for (const char* bad : {"none", "step_none", "FENCING", "unknown"}) {
    EXPECT_EQ(ParseReshardStep(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ReshardNamesTest, PhaseForMetric) {
  EXPECT_EQ(ReshardPhase(v1::RESHARD_SHADOW), 1);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_DUAL_WRITE), 1);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_BACKFILL), 2);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_CATCHING_UP), 2);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_VERIFY), 3);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_SWAP_PAUSED), 4);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_SWAP_FINAL_DELTA), 4);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_ROLLING_BACK), 4);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_RETENTION), 5);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_CLEANUP), 5);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_ABORTING), 5);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_DONE), 0);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_ABORTED), 0);
  EXPECT_EQ(ReshardPhase(v1::RESHARD_FAILED), 0);
}

}  // namespace
}  // namespace miroir
