// The chaos matrix at large volumes (issue 8 scenarios 6, 7, 10), label `long`:
// same scenario as tests/chaos (chaos_matrix.h), writes unthrottled until the
// volume is acknowledged.
#include <gtest/gtest.h>

#include "chaos/chaos_matrix.h"

namespace miroir::testing {
namespace {

class ChaosVolume : public ::testing::TestWithParam<MatrixCase> {};

TEST_P(ChaosVolume, MoveUnderLiveWritesKeepsThePromise) { RunMatrixCase(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Long, ChaosVolume,
                         ::testing::Values(MatrixCase{.name = "W100kAeOnDeltaOn",
                                                      .scenarios = "6",
                                                      .keys = 5000,
                                                      .min_writes = 100000,
                                                      .write_rate = 0},
                                           MatrixCase{.name = "W50kAeOffDeltaOn",
                                                      .scenarios = "7",
                                                      .anti_entropy = false,
                                                      .keys = 5000,
                                                      .min_writes = 50000,
                                                      .write_rate = 0},
                                           MatrixCase{.name = "W1MAeOnDeltaOn",
                                                      .scenarios = "10",
                                                      .keys = 20000,
                                                      .min_writes = 1000000,
                                                      .write_rate = 0}),
                         [](const ::testing::TestParamInfo<MatrixCase>& i) {
                           return i.param.name;
                         });

}  // namespace
}  // namespace miroir::testing
