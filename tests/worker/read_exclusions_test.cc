// ReadExclusions: the coordinator's versioned list, and this worker's own
// reported misses kept until the coordinator confirms the report.
#include "worker/read_exclusions.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

v1::ReadExclusions List(uint64_t version,
                        std::vector<std::tuple<std::string, uint64_t, uint32_t>> e,
                        uint64_t through = 0) {
  v1::ReadExclusions l;
  l.set_version(version);
  l.set_misses_through(through);
  for (const auto& [n, g, s] : e) {
    auto* x = l.add_exclusions();
    x->set_node(n);
    x->set_index("products");
    x->set_generation(g);
    x->set_shard(s);
  }
  return l;
}

TEST(ReadExclusions, OnlyANewerListReplacesTheOneHeld) {
  ReadExclusions ex;
  EXPECT_TRUE(ex.Apply(List(3, {{"a", 1, 2}})));
  EXPECT_TRUE(ex.Excluded("a", 1, 2));
  EXPECT_FALSE(ex.Excluded("a", 1, 3));
  EXPECT_FALSE(ex.Excluded("a", 2, 2));
  EXPECT_FALSE(ex.Apply(List(2, {})));  // older: ignored
  EXPECT_FALSE(ex.Apply(List(3, {})));  // same: ignored
  EXPECT_TRUE(ex.Excluded("a", 1, 2));
  EXPECT_TRUE(ex.Apply(List(4, {})));
  EXPECT_FALSE(ex.Excluded("a", 1, 2));
  EXPECT_EQ(ex.version(), 4u);
}

// A miss report's answer may come from a restarted coordinator before its
// session's first list: versions count anew there, so a list of another process
// (`run`) replaces the held one whatever its version, and only then does its
// confirmation end the own exclusion.
TEST(ReadExclusions, AListOfAnotherCoordinatorProcessReplacesTheHeldOne) {
  ReadExclusions ex;
  v1::ReadExclusions old_run = List(50, {{"a", 1, 2}});
  old_run.set_run(7);
  ASSERT_TRUE(ex.Apply(old_run));
  ex.AddOwnMiss("b", 1, 3);
  ex.ReportSent(1);
  v1::ReadExclusions new_run = List(2, {{"b", 1, 3}}, /*through=*/1);
  new_run.set_run(9);
  EXPECT_TRUE(ex.Apply(new_run));
  EXPECT_EQ(ex.version(), 2u);
  EXPECT_FALSE(ex.Excluded("a", 1, 2));
  EXPECT_EQ(ex.own(), 0u);
  EXPECT_TRUE(ex.Excluded("b", 1, 3));  // now on the coordinator's account
}

TEST(ReadExclusions, AnOwnMissIsExcludedUntilTheReportCarryingItIsConfirmed) {
  ReadExclusions ex;
  ex.Apply(List(1, {}));
  ex.AddOwnMiss("a", 1, 2);
  EXPECT_TRUE(ex.Excluded("a", 1, 2));
  // A list that does not answer a report changes nothing for it.
  ex.Apply(List(2, {}));
  EXPECT_TRUE(ex.Excluded("a", 1, 2));
  ex.ReportSent(5);
  ex.Apply(List(3, {}, /*through=*/4));  // an earlier report
  EXPECT_TRUE(ex.Excluded("a", 1, 2));
  ex.Apply(List(4, {{"a", 1, 2}}, /*through=*/5));
  EXPECT_EQ(ex.own(), 0u);
  EXPECT_TRUE(ex.Excluded("a", 1, 2));  // now through the coordinator's list
  ex.Apply(List(5, {}));                // the pass completed
  EXPECT_FALSE(ex.Excluded("a", 1, 2));
}

TEST(ReadExclusions, AMissAfterTheReportNeedsTheNextReportConfirmed) {
  ReadExclusions ex;
  ex.AddOwnMiss("a", 1, 2);
  ex.ReportSent(1);
  ex.AddOwnMiss("a", 1, 2);  // missed again before report 1 was answered
  ex.Apply(List(1, {}, /*through=*/1));
  EXPECT_TRUE(ex.Excluded("a", 1, 2));
  ex.ReportSent(2);
  ex.Apply(List(2, {}, /*through=*/2));
  EXPECT_FALSE(ex.Excluded("a", 1, 2));
}

// A report that failed (its misses back in the session's queue) is confirmed by
// the later report that carries them again.
TEST(ReadExclusions, AMissWhoseReportFailedIsConfirmedByALaterReport) {
  ReadExclusions ex;
  ex.AddOwnMiss("a", 1, 2);
  ex.ReportSent(1);          // refused: no answer, nothing confirmed
  ex.AddOwnMiss("c", 1, 4);  // added since
  ex.ReportSent(2);          // carries a (again) and c
  ex.Apply(List(1, {}, /*through=*/2));
  EXPECT_EQ(ex.own(), 0u);
}

}  // namespace
}  // namespace miroir
