// NodeHealth: the slow-node decisions of the write path (DESIGN §4) with the
// times given: suspicion after a run of timeouts, only a timely probe clears it,
// a suspected node's outstanding sends are capped, probes are spaced.
#include "worker/node_health.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

SlowNodeOptions Opts() {
  SlowNodeOptions o;
  o.suspect_after = 2;
  o.max_inflight = 2;
  o.probe_interval = absl::Milliseconds(100);
  return o;
}

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

TEST(NodeHealth, ARunOfTimeoutsSuspectsAndATimelyAnswerEndsTheRun) {
  NodeHealth h(Opts());
  EXPECT_FALSE(h.Suspected("r0"));
  EXPECT_FALSE(h.RecordTimeout("r0", kT0));
  h.RecordAnswer("r0");  // the run ends: one more timeout is not two in a row
  EXPECT_FALSE(h.RecordTimeout("r0", kT0));
  EXPECT_FALSE(h.Suspected("r0"));
  EXPECT_TRUE(h.RecordTimeout("r0", kT0));
  EXPECT_TRUE(h.Suspected("r0"));
  EXPECT_FALSE(h.RecordTimeout("r0", kT0));  // already suspected: counted once
  EXPECT_EQ(h.counters().suspicions.load(), 1u);
  EXPECT_EQ(h.SuspectedCount(), 1u);
  EXPECT_EQ(h.SuspectedNodes(), std::vector<std::string>{"r0"});
  EXPECT_FALSE(h.Suspected("r1"));
}

TEST(NodeHealth, AnOrdinaryAnswerDoesNotClearOnlyATimelyProbeDoes) {
  NodeHealth h(Opts());
  h.RecordTimeout("r0", kT0);
  ASSERT_TRUE(h.RecordTimeout("r0", kT0));
  h.RecordAnswer("r0");  // a slow node answers, late: still suspected
  EXPECT_TRUE(h.Suspected("r0"));
  // The first probe waits one interval after the suspicion.
  EXPECT_FALSE(h.ProbeDue("r0", kT0 + absl::Milliseconds(50)));
  ASSERT_TRUE(h.ProbeDue("r0", kT0 + absl::Milliseconds(100)));
  // One probe at a time.
  EXPECT_FALSE(h.ProbeDue("r0", kT0 + absl::Milliseconds(500)));
  EXPECT_FALSE(h.ProbeDone("r0", /*answered_within=*/false));
  EXPECT_TRUE(h.Suspected("r0"));
  // Spaced by the interval from the last start.
  EXPECT_FALSE(h.ProbeDue("r0", kT0 + absl::Milliseconds(150)));
  ASSERT_TRUE(h.ProbeDue("r0", kT0 + absl::Milliseconds(200)));
  EXPECT_TRUE(h.ProbeDone("r0", /*answered_within=*/true));
  EXPECT_FALSE(h.Suspected("r0"));
  EXPECT_EQ(h.SuspectedCount(), 0u);
  EXPECT_EQ(h.counters().clears.load(), 1u);
  // Cleared: no probe, and a fresh run of timeouts is needed again.
  EXPECT_FALSE(h.ProbeDue("r0", kT0 + absl::Seconds(10)));
  EXPECT_FALSE(h.RecordTimeout("r0", kT0));
  EXPECT_FALSE(h.Suspected("r0"));
}

TEST(NodeHealth, ASuspectedNodeIsAtCapWithMaxInflightOutstandingSends) {
  NodeHealth h(Opts());
  // Not suspected: no cap.
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(h.AtCap("r0"));
    h.BeginSend("r0");
  }
  EXPECT_FALSE(h.AtCap("r0"));
  h.RecordTimeout("r0", kT0);
  h.RecordTimeout("r0", kT0);
  ASSERT_TRUE(h.Suspected("r0"));
  EXPECT_TRUE(h.AtCap("r0"));  // 5 outstanding >= 2
  for (int i = 0; i < 4; ++i) h.EndSend("r0");
  EXPECT_FALSE(h.AtCap("r0"));  // 1 outstanding
  h.BeginSend("r0");
  EXPECT_TRUE(h.AtCap("r0"));  // 2 outstanding
  h.EndSend("r0");
  EXPECT_FALSE(h.AtCap("r0"));
  // Other nodes are not affected.
  EXPECT_FALSE(h.AtCap("r1"));
}

TEST(NodeHealth, MaxInflightZeroPutsASuspectedNodeAtCapWithNothingOutstanding) {
  SlowNodeOptions o = Opts();
  o.max_inflight = 0;
  NodeHealth h(o);
  EXPECT_FALSE(h.AtCap("r0"));
  h.RecordTimeout("r0", kT0);
  h.RecordTimeout("r0", kT0);
  EXPECT_TRUE(h.AtCap("r0"));
}

}  // namespace
}  // namespace miroir
