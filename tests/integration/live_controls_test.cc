// Live controls on a real fleet (issue 22 item 3): `plan update` (throttle and
// schedule window of a running plan), `plans pause-all|resume-all`, the forced
// cutover of a catch-up that does not converge (and its refusal by the
// delta-skip gate), `config show` and the reload on SIGHUP. Each bad input is
// refused with its code and changes nothing; the writer's check holds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/temp_dir.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;
using ::testing::HasSubstr;

uint64_t Copied(const pb::Plan& p) {
  uint64_t n = 0;
  for (const auto& m : p.moves()) n += m.documents_copied();
  return n;
}

// Documents the plan's moves copied per second over `window`.
double CopyRate(Fleet& f, uint64_t id, absl::Duration window) {
  auto a = f.GetPlan(id);
  const absl::Time t0 = absl::Now();
  absl::SleepFor(window);
  auto b = f.GetPlan(id);
  const double s = absl::ToDoubleSeconds(absl::Now() - t0);
  if (!a.ok() || !b.ok()) return -1;
  return static_cast<double>(Copied(b->plan()) - Copied(a->plan())) / s;
}

// The plan as `plan show --output json` prints it (every field, history included).
std::string PlanJsonText(Fleet& f, uint64_t id) {
  auto r = f.Ctl({"plan", "show", absl::StrCat(id), "--output", "json"});
  return r.ok() ? r->stdout_text : "";
}

bool AnyMoveSays(const pb::Plan& p, const std::string& words) {
  for (const auto& m : p.moves()) {
    if (m.message().find(words) != std::string::npos) return true;
  }
  return false;
}

TEST(LiveControls, UpdateThrottleAndWindowOfARunningPlanPauseAllResumeAll) {
  TempDir tmp("live_update");
  ScenarioOptions so;
  so.fleet.group_sizes = {2};
  so.fleet.indexes = {{"products", 4, 1}};
  // Small pages: the copy checkpoints (and shows its progress) every few documents.
  so.fleet.coordinator_config["migration"]["backfill_batch_size"] = 10;
  so.keys = 1200;
  so.write_rate = 100;
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(20);
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string id = absl::StrCat(plan->id());
  ASSERT_TRUE(f.WaitForMoveState(plan->id(), pb::MOVE_COPYING).ok());

  // Bad inputs: refused with their code, the plan unchanged.
  const std::string before = PlanJsonText(f, plan->id());
  ASSERT_FALSE(before.empty());
  for (const char* bad : {"0", "-5"}) {
    auto r = f.Ctl({"plan", "update", id, "--throttle", bad});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, 2) << r->stderr_text;
    EXPECT_THAT(r->stderr_text, HasSubstr("throttle_docs_per_s: must be at least 1"));
  }
  auto unknown = f.Ctl({"plan", "update", "999999", "--throttle", "10", "--output", "json"});
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->exit_code, 1);
  EXPECT_THAT(unknown->stderr_text, HasSubstr("\"NOT_FOUND\""));
  EXPECT_THAT(unknown->stderr_text, HasSubstr("id: unknown plan 999999"));
  auto bad_window = f.Ctl({"plan", "update", id, "--schedule-window", "25:00-26:00"});
  ASSERT_TRUE(bad_window.ok());
  EXPECT_EQ(bad_window->exit_code, 2) << bad_window->stderr_text;
  EXPECT_THAT(bad_window->stderr_text, HasSubstr("schedule_window:"));
  auto nothing = f.Ctl({"plan", "update", id});
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(nothing->exit_code, 2) << nothing->stderr_text;
  auto same = f.GetPlan(plan->id());
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->plan().throttle_docs_per_s(), 20u);
  EXPECT_EQ(same->plan().schedule_window(), "");
  {
    // Same history: no event was recorded by a refused update.
    auto b = nlohmann::json::parse(before);
    auto a = nlohmann::json::parse(PlanJsonText(f, plan->id()));
    EXPECT_EQ(a["history"].size(), b["history"].size());
    EXPECT_EQ(a["throttle_docs_per_s"], b["throttle_docs_per_s"]);
  }

  // pause-all / resume-all: every running plan, then again (nothing to do).
  auto paused = f.Ctl({"plans", "pause-all", "--output", "json"});
  ASSERT_TRUE(paused.ok());
  ASSERT_EQ(paused->exit_code, 0) << paused->stderr_text;
  auto pj = nlohmann::json::parse(paused->stdout_text);
  ASSERT_EQ(pj.size(), 1u) << paused->stdout_text;
  EXPECT_EQ(pj[0]["state"], "paused");
  auto again = f.Ctl({"plans", "pause-all"});
  ASSERT_TRUE(again.ok());
  EXPECT_THAT(again->stdout_text, HasSubstr("0 plan(s) paused"));
  auto p1 = f.GetPlan(plan->id());
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->plan().state(), pb::PLAN_PAUSED);
  auto resumed = f.Ctl({"plans", "resume-all"});
  ASSERT_TRUE(resumed.ok());
  EXPECT_THAT(resumed->stdout_text, HasSubstr(absl::StrCat("1 plan(s) resumed: ", id)));

  // The throttle reaches the copy running now: its rate goes up by far.
  const double slow = CopyRate(f, plan->id(), absl::Seconds(3));
  ASSERT_GT(slow, 0) << "the throttled copy made no progress";
  // A window that excludes now: the moves copy, then wait for it before pausing.
  auto up = f.Ctl({"plan", "update", id, "--throttle", "5000", "--schedule-window",
                   WindowAhead(absl::Hours(2))});
  ASSERT_TRUE(up.ok());
  ASSERT_EQ(up->exit_code, 0) << up->stderr_text;
  EXPECT_THAT(up->stdout_text, HasSubstr("throttle 5000 docs/s"));
  const double fast = CopyRate(f, plan->id(), absl::Seconds(1));
  auto shown = f.GetPlan(plan->id());
  ASSERT_TRUE(shown.ok());
  EXPECT_GE(fast, 5 * slow) << "copy rate " << slow << "/s before, " << fast << "/s after\n"
                            << DescribePlan(shown->plan());
  bool event = false;
  for (const auto& e : shown->history()) {
    event |= e.reason().find("updated by operator: throttle 20 -> 5000 docs/s") == 0;
  }
  EXPECT_TRUE(event) << PlanJsonText(f, plan->id());

  pb::Plan waiting;
  for (int i = 0; i < 300; ++i) {
    auto p = f.GetPlan(plan->id());
    ASSERT_TRUE(p.ok());
    waiting = p->plan();
    ASSERT_FALSE(PlanEnded(waiting.state())) << DescribePlan(waiting);
    if (AnyMoveSays(waiting, "waiting for a schedule window")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(AnyMoveSays(waiting, "waiting for a schedule window")) << DescribePlan(waiting);
  for (const auto& m : waiting.moves()) EXPECT_LT(m.state(), pb::MOVE_PAUSED);

  // Back to the config's windows (any time): the plan finishes.
  auto open = f.Ctl({"plan", "update", id, "--schedule-window", ""});
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->exit_code, 0) << open->stderr_text;
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(90));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  auto done = f.Ctl({"plan", "update", id, "--throttle", "10"});
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->exit_code, 1) << done->stderr_text;  // an ended plan does not change
  EXPECT_THAT(done->stderr_text, HasSubstr("is done"));
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

TEST(LiveControls, ForcedCutoverOfACatchUpThatDoesNotConverge) {
  TempDir tmp("live_cutover");
  ScenarioOptions so;
  so.fleet.group_sizes = {1};
  so.fleet.indexes = {{"products", 2, 1}};
  so.keys = 400;
  so.write_rate = 1500;
  so.delete_fraction = 0.1;
  so.fleet.coordinator_config["migration"]["catch_up_threshold"] = 1;
  so.fleet.coordinator_config["migration"]["catch_up_max"] = "2s";
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_throttle_docs_per_s(50);  // far below the write rate
  auto plan = (*sc)->Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::string id = absl::StrCat(plan->id());

  // Without --force: usage error; before any move catches up: refused. Nothing changes.
  auto unforced = f.Ctl({"plan", "cutover", id});
  ASSERT_TRUE(unforced.ok());
  EXPECT_EQ(unforced->exit_code, 2) << unforced->stderr_text;
  EXPECT_THAT(unforced->stderr_text, HasSubstr("force:"));
  auto unknown = f.Ctl({"plan", "cutover", "999999", "--force"});
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->exit_code, 1);
  EXPECT_THAT(unknown->stderr_text, HasSubstr("id: unknown plan 999999"));

  pb::Plan last;
  bool not_converging = false;
  for (int i = 0; i < 300 && !not_converging; ++i) {
    auto p = f.GetPlan(plan->id());
    ASSERT_TRUE(p.ok());
    last = p->plan();
    ASSERT_FALSE(PlanEnded(last.state())) << DescribePlan(last);
    not_converging = AnyMoveSays(last, "not converging");
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(not_converging) << DescribePlan(last);
  for (const auto& m : last.moves()) EXPECT_FALSE(m.force_cutover());

  // The final delta is copied under the plan's throttle: lift it first, so
  // the cutover fits max_write_stall, then force the cutover while the writer
  // keeps writing at full rate.
  auto up = f.Ctl({"plan", "update", id, "--throttle", "1000000"});
  ASSERT_TRUE(up.ok());
  ASSERT_EQ(up->exit_code, 0) << up->stderr_text;
  auto forced = f.Ctl({"plan", "cutover", id, "--force"});
  ASSERT_TRUE(forced.ok());
  ASSERT_EQ(forced->exit_code, 0) << forced->stderr_text;
  EXPECT_THAT(forced->stdout_text, HasSubstr("cut over after their current catch-up pass"));
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(90));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);
  EXPECT_FALSE((*sc)->writer().stats().acked_puts == 0);
  auto hist = f.GetPlan(plan->id());
  ASSERT_TRUE(hist.ok());
  // The move machine's own transition (not the RPC's plan event): the flag was
  // honoured where the cutover is decided.
  bool honoured = false;
  for (const auto& e : hist->history()) {
    honoured |= e.reason().find("cutover forced by the operator (") != std::string::npos;
  }
  EXPECT_TRUE(honoured) << DescribePlan(hist->plan());
  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

TEST(LiveControls, ForcedCutoverIsRefusedWithAntiEntropyOffAndTheDeltaSkipped) {
  TempDir tmp("live_cutover_gate");
  FleetOptions opts;
  opts.group_sizes = {2};
  opts.indexes = {{"products", 4, 1}};
  opts.coordinator_config["migration"]["backfill_batch_size"] = 10;
  auto fleet = Fleet::Start(tmp.path(), opts);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  WriterOptions wo = f.WriterOptionsFor();
  wo.keys = 800;
  wo.load_first = true;
  wo.load_only = true;
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Run().ok());
  auto addr = f.AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  // Skipping the delta is allowed while anti-entropy is on...
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  req.set_skip_delta_pass(true);
  req.set_throttle_docs_per_s(5);  // the copy lasts well past the checks below
  auto plan = f.CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(f.WaitForMoveState(plan->id(), pb::MOVE_COPYING).ok());
  // ... then the coordinator restarts with anti-entropy off (a config change).
  YAML::Node cfg = f.options().coordinator_config;
  cfg["anti_entropy"]["enabled"] = false;
  ASSERT_TRUE(f.WriteCoordinatorConfig(cfg).ok());
  ASSERT_TRUE(f.RestartCoordinator().ok());
  const std::string id = absl::StrCat(plan->id());
  const std::string before = PlanJsonText(f, plan->id());
  auto refused = f.Ctl({"plan", "cutover", id, "--force", "--output", "json"});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->exit_code, 1) << refused->stderr_text;
  EXPECT_THAT(refused->stderr_text, HasSubstr("\"FAILED_PRECONDITION\""));
  EXPECT_THAT(refused->stderr_text,
              HasSubstr("delta pass is skipped and anti-entropy is disabled "
                        "(migration.skip_delta_pass=true, anti_entropy.enabled=false)"));
  auto b = nlohmann::json::parse(before);
  auto a = nlohmann::json::parse(PlanJsonText(f, plan->id()));
  EXPECT_EQ(a["history"].size(), b["history"].size());
  for (const auto& m : a["moves"]) EXPECT_NE(m.value("force_cutover", false), true) << m.dump();
  (void)f.Ctl({"plan", "abort", id});
}

TEST(LiveControls, ConfigShowAndReloadOnSighup) {
  TempDir tmp("live_config");
  FleetOptions opts;
  opts.group_sizes = {1};
  opts.indexes = {{"products", 2, 1}};
  opts.coordinator_config["migration"]["task_retries"] = 5;
  auto fleet = Fleet::Start(tmp.path(), opts);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  auto entry = [&](const std::string& key) -> nlohmann::json {
    auto r = f.Ctl({"config", "show", "--output", "json"});
    if (!r.ok() || r->exit_code != 0) {
      ADD_FAILURE() << "config show: " << (r.ok() ? r->stderr_text : r.status().ToString());
      return {};
    }
    // Parsed into a named value: a range-for over a temporary's member dangles.
    const nlohmann::json shown = nlohmann::json::parse(r->stdout_text);
    for (const auto& e : shown["entries"]) {
      if (e["key"] == key) return e;
    }
    ADD_FAILURE() << "config show has no " << key;
    return {};
  };
  EXPECT_EQ(entry("migration.task_retries")["value"], "5");
  EXPECT_EQ(entry("migration.task_retries")["live"], true);
  EXPECT_EQ(entry("worker_lease_ttl")["value"], "2s");
  EXPECT_EQ(entry("worker_lease_ttl")["live"], false);
  auto table = f.Ctl({"config", "show"});
  ASSERT_TRUE(table.ok());
  EXPECT_THAT(table->stdout_text, HasSubstr("migration.task_retries"));

  // A live key and a restart-only key changed in the file, then SIGHUP.
  YAML::Node cfg = f.options().coordinator_config;
  cfg["migration"]["task_retries"] = 40;
  cfg["worker_lease_ttl"] = "9s";
  ASSERT_TRUE(f.WriteCoordinatorConfig(cfg).ok());
  ASSERT_EQ(kill(f.coordinator()->pid(), SIGHUP), 0);
  nlohmann::json retries;
  for (int i = 0; i < 100; ++i) {
    retries = entry("migration.task_retries");
    if (retries["value"] == "40") break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(retries["value"], "40");
  EXPECT_EQ(entry("worker_lease_ttl")["value"], "2s");  // kept until a restart
  auto status = f.Status();
  ASSERT_TRUE(status.ok());  // still serving

  // A file that does not validate: refused (exit 2), nothing applied.
  cfg["migration"]["task_retries"] = 7;
  cfg["migration"]["drain_timeout"] = "5s";
  cfg["migration"]["max_write_stall"] = "1s";
  ASSERT_TRUE(f.WriteCoordinatorConfig(cfg).ok());
  auto bad = f.Ctl({"config", "reload"});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->exit_code, 2) << bad->stderr_text;
  EXPECT_THAT(bad->stderr_text, HasSubstr("migration.drain_timeout"));
  EXPECT_EQ(entry("migration.task_retries")["value"], "40");
  // Fixed: the reload through the CLI says what it applied and what waits.
  cfg["migration"]["drain_timeout"] = "20ms";
  cfg["migration"]["max_write_stall"] = "2s";
  ASSERT_TRUE(f.WriteCoordinatorConfig(cfg).ok());
  auto good = f.Ctl({"config", "reload"});
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->exit_code, 0) << good->stderr_text;
  EXPECT_THAT(good->stdout_text, HasSubstr("migration.task_retries"));
  EXPECT_THAT(good->stdout_text, HasSubstr("no (restart)"));
  EXPECT_EQ(entry("migration.task_retries")["value"], "7");
}

}  // namespace
}  // namespace miroir::testing
