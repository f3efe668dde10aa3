// The audit stamp (coordinator/audit.h): pure, on hand-built changes.
#include "coordinator/audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace miroir::coordinator {
namespace {

using ::testing::HasSubstr;

const Caller kAlice{"ops-alice", "Coordinator/PausePlan"};

TEST(StampAuditTest, StampsTheCallersEventsAndAddsOneRecord) {
  Change c;
  v1::Plan plan;
  plan.set_id(7);
  plan.set_state(v1::PLAN_PAUSED);
  c.plans[7] = plan;
  v1::Event ev;
  ev.set_plan_id(7);
  ev.set_from("running");
  ev.set_to("paused");
  c.events.push_back(ev);
  v1::Event own = ev;  // already attributed (e.g. a nested scope): kept
  own.set_actor("someone-else");
  c.events.push_back(own);
  StampAudit(kAlice, 1234, &c);
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[0].actor(), "ops-alice");
  EXPECT_EQ(c.events[0].call(), "Coordinator/PausePlan");
  EXPECT_EQ(c.events[1].actor(), "someone-else");
  ASSERT_EQ(c.audit.size(), 1u);
  const v1::Event& a = c.audit[0];
  EXPECT_EQ(a.time_ms(), 1234);
  EXPECT_EQ(a.plan_id(), 7u);
  EXPECT_EQ(a.actor(), "ops-alice");
  EXPECT_EQ(a.call(), "Coordinator/PausePlan");
  EXPECT_EQ(a.to(), "accepted");
  EXPECT_THAT(a.reason(), HasSubstr("plan 7 (paused)"));
  EXPECT_THAT(a.reason(), HasSubstr("2 event(s)"));
  // The record goes to the audit log, not to the plan's events.
  StateWrite w = c.ToWrite(1);
  EXPECT_EQ(w.events.size(), 2u);
  ASSERT_EQ(w.audit.size(), 1u);
  v1::Event back;
  ASSERT_TRUE(back.ParseFromString(w.audit[0]));
  EXPECT_EQ(back.actor(), "ops-alice");
}

TEST(StampAuditTest, AnEmptyChangeRecordsNothing) {
  Change c;
  StampAudit(kAlice, 1, &c);
  EXPECT_TRUE(c.audit.empty());
  EXPECT_TRUE(c.empty());
}

TEST(StampAuditTest, NamesWhoStartedAnOperatorsAntiEntropyRunButNotAScheduledOne) {
  Change c;
  v1::AntiEntropyRun manual;
  manual.set_id(3);
  v1::AntiEntropyRun scheduled;
  scheduled.set_id(4);
  scheduled.set_scheduled(true);
  c.ae_runs[3] = manual;
  c.ae_runs[4] = scheduled;
  StampAudit({"ops-bob", "AntiEntropy/Run"}, 5, &c);
  EXPECT_EQ(c.ae_runs[3].started_by(), "ops-bob");
  EXPECT_EQ(c.ae_runs[4].started_by(), "");
  ASSERT_EQ(c.audit.size(), 1u);
  EXPECT_EQ(c.audit[0].plan_id(), 0u);
  EXPECT_EQ(c.audit[0].reason(), "anti-entropy runs 3, 4");
}

TEST(DescribeChangeTest, NamesWhatChangedAndCapsLongLists) {
  Change c;
  c.aliases["p"] = "products";
  c.aliases["old"] = "";
  for (int i = 0; i < 5; ++i) c.nodes[absl::StrCat("r", i)] = v1::Node();
  c.bump_epoch = true;
  EXPECT_EQ(DescribeChange(c),
            "nodes r0, r1, r2 +2 more; aliases old removed, p -> products; new epoch");
}

TEST(ScopedCallerTest, NoScopeOnAThreadMeansTheCoordinatorsOwnStep) {
  EXPECT_EQ(ScopedCaller::Current(), nullptr);
}

}  // namespace
}  // namespace miroir::coordinator
