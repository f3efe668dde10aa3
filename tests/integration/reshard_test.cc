// Online resharding end to end (issue 6, DESIGN §7): the coordinator's Reshard
// service driving real workers over real redis-server nodes while the one test
// writer keeps putting and deleting; its check (DESIGN §4) then reads the nodes
// of the new LIVE generation. Also: the old generation leaves no key behind,
// verify catches a replica altered behind miroir's back, rollback after the swap
// loses no write (not even one the reverse dual-write missed), coordinator and
// worker SIGKILL mid-backfill, the window and enable gates, and bad requests.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/reshard_names.h"
#include "common/routing.h"
#include "harness/fleet.h"
#include "harness/reshard_ops.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"
#include "miroir/v1/reshard.grpc.pb.h"
#include "worker/stores/redis_store.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

struct ReshardSetup {
  std::vector<int> groups = {2, 2};
  uint32_t shards = 8;
  uint32_t rf = 1;
  int keys = 600;
  double rate = 300;  // writes/s while the reshard runs
  absl::Duration write_for = absl::Seconds(120);
  std::function<void(YAML::Node&)> config;  // coordinator config tweaks
  std::set<std::string> proxied;            // nodes behind a TcpProxy
};

class Reshard : public ::testing::Test {
 protected:
  void Start(const ReshardSetup& setup, bool with_writer = true) {
    setup_ = setup;
    FleetOptions opts;
    opts.group_sizes = setup.groups;
    opts.indexes = {{"products", setup.shards, setup.rf}};
    opts.proxied_nodes = setup.proxied;
    YAML::Node rs;
    rs["retain_old_index_hours"] = 48;
    opts.coordinator_config["resharding"] = rs;
    if (setup.config) setup.config(opts.coordinator_config);
    auto fleet = Fleet::Start(tmp_.path(), opts);
    ASSERT_TRUE(fleet.ok()) << fleet.status();
    fleet_ = std::move(*fleet);
    if (!with_writer) return;
    WriterOptions wo = fleet_->WriterOptionsFor("products");
    wo.keys = setup.keys;
    wo.load_first = true;
    wo.ops_per_second = setup.rate;
    wo.max_duration = setup.write_for;
    wo.seed = 6;
    writer_ = std::make_unique<TestWriter>(wo);
    ASSERT_TRUE(writer_->Start().ok());
    // Wait (bounded) until the load is acknowledged.
    for (int i = 0; i < 300 && writer_->stats().acked() < static_cast<uint64_t>(setup.keys); ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_GE(writer_->stats().acked(), static_cast<uint64_t>(setup.keys));
  }

  absl::StatusOr<pb::ReshardStartResponse> StartReshard(uint32_t new_shards,
                                                        uint64_t throttle = 0) {
    return miroir::testing::StartReshard(*fleet_, ReshardTo(new_shards, throttle));
  }
  absl::StatusOr<pb::ReshardStatusResponse> Call(const std::string& verb) {
    return ReshardCall(*fleet_, verb);
  }
  absl::StatusOr<pb::ReshardStatusResponse> Status() { return Call("status"); }

  // Waits for one of `states`; fails the test on a state in `bad` or a timeout.
  pb::ReshardRecord WaitFor(const std::set<std::string>& states,
                            absl::Duration timeout = absl::Seconds(120),
                            const std::set<std::string>& bad = {"failed", "aborted"}) {
    auto r = WaitForReshardState(*fleet_, states, timeout, bad);
    if (!r.ok()) {
      ADD_FAILURE() << r.status();
      auto st = Status();
      return st.ok() ? st->reshard() : pb::ReshardRecord();
    }
    return *r;
  }

  uint64_t EntriesOf(uint64_t gen, uint32_t shards) {
    auto n = EntriesOfGeneration(*fleet_, "products", gen, shards);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : ~uint64_t{0};
  }

  void StopAndCheck() {
    writer_->Stop();
    writer_->Wait();
    auto report = CheckPromise(writer_->records(), fleet_->CheckOptionsFor("products"));
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->ok()) << report->Summary();
    EXPECT_GT(report->acknowledged_writes, static_cast<uint64_t>(setup_.keys));
    std::cout << "acknowledged " << writer_->stats().acked() << ": " << report->Summary() << "\n";
  }

  uint32_t LiveShards() {
    auto idx = fleet_->Indexes();
    EXPECT_TRUE(idx.ok());
    return idx.ok() ? idx->at("products").index().shards() : 0;
  }

  // Runs one reshard to its end (retention, then complete, then done).
  pb::ReshardRecord ReshardToDone(uint32_t new_shards) {
    auto started = StartReshard(new_shards);
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) return {};
    pb::ReshardRecord r = WaitFor({"retention"});
    EXPECT_EQ(r.state(), pb::RESHARD_RETENTION);
    EXPECT_EQ(LiveShards(), new_shards);
    // No topology plan while the old generation is retained (DESIGN §6 gates).
    pb::CreatePlanRequest drain;
    drain.set_kind(pb::PLAN_REMOVE_NODE);
    drain.set_node_id(fleet_->node_ids().front());
    auto refused = fleet_->CreatePlan(drain);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
    EXPECT_NE(refused.status().message().find("in retention"), std::string::npos)
        << refused.status();
    auto c = Call("complete");
    EXPECT_TRUE(c.ok()) << c.status();
    r = WaitFor({"done"});
    EXPECT_EQ(r.state(), pb::RESHARD_DONE);
    EXPECT_EQ(EntriesOf(r.old_generation(), r.old_shards()), 0u)
        << "old generation " << r.old_generation() << " left keys behind";
    return r;
  }

  TempDir tmp_;
  ReshardSetup setup_;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<TestWriter> writer_;
};

TEST_F(Reshard, EightToSixteenUnderLivePutsAndDeletes) {
  Start({});
  pb::ReshardRecord r = ReshardToDone(16);
  EXPECT_GT(r.documents_backfilled(), 0u);
  EXPECT_GE(r.verify_rounds(), 1u);
  StopAndCheck();
  auto v = fleet_->Ctl({"verify", "--index", "products", "--wait"});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->exit_code, 0) << v->stdout_text << v->stderr_text;
}

TEST_F(Reshard, SixteenToTwelveUnderLivePutsAndDeletes) {
  ReshardSetup s;
  s.shards = 16;
  s.groups = {3};
  s.rf = 2;
  Start(s);
  ReshardToDone(12);
  StopAndCheck();
}

TEST_F(Reshard, RoundTripsNeverReuseAGenerationAndLeaveNoKeys) {
  Start({});
  std::set<uint64_t> generations;
  for (uint32_t to : {16u, 8u, 16u}) {
    pb::ReshardRecord r = ReshardToDone(to);
    ASSERT_EQ(r.state(), pb::RESHARD_DONE);
    generations.insert(r.old_generation());
    generations.insert(r.new_generation());
  }
  EXPECT_EQ(generations.size(), 4u);  // 8, 16, 8, 16: four distinct generations
  StopAndCheck();
}

TEST_F(Reshard, RollbackAfterTheSwapLosesNoWriteEvenOneTheReverseDualWriteMissed) {
  Start({});
  ASSERT_TRUE(StartReshard(16).ok());
  pb::ReshardRecord r = WaitFor({"retention"});
  ASSERT_EQ(r.state(), pb::RESHARD_RETENTION);
  // A write that reached the new LIVE generation only, as if the reverse
  // dual-write into the retained one had been lost: applied straight to the new
  // owners of its shard, at a version newer than anything the writer stamps.
  auto idx = fleet_->Indexes();
  ASSERT_TRUE(idx.ok());
  const std::string key = "missed:1";
  const uint32_t new_shard = ShardForKey(key, 16);
  const Version v{Version::Pack(absl::ToUnixMillis(absl::Now()) + 60000, 0), 99};
  std::vector<std::string> new_owners;
  for (const auto& g : idx->at("products").routes()) {
    if (g.generation() != r.new_generation()) continue;
    for (const auto& o : g.routes(static_cast<int>(new_shard)).owners()) {
      for (const auto& n : o.nodes()) new_owners.push_back(n);
    }
  }
  ASSERT_FALSE(new_owners.empty());
  auto st = fleet_->Status();
  ASSERT_TRUE(st.ok());
  for (const auto& n : new_owners) {
    auto store = RedisStore::Create(fleet_->redis(n).address(), StoreOptions{});
    ASSERT_TRUE(store.ok());
    auto a = (*store)->Apply(ShardKey{"products", r.new_generation(), new_shard}, st->epoch(),
                             {Mutation{key, v, false, "{\"missed\":true}", 0}});
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_EQ((*a)[0].outcome, ApplyOutcome::kApplied);
  }
  absl::SleepFor(absl::Seconds(1));  // more writes after the swap, through both generations
  auto rb = Call("rollback");
  ASSERT_TRUE(rb.ok()) << rb.status();
  r = WaitFor({"rolled_back"});
  ASSERT_EQ(r.state(), pb::RESHARD_ROLLED_BACK);
  EXPECT_EQ(LiveShards(), 8u);
  EXPECT_EQ(EntriesOf(r.new_generation(), 16), 0u);
  // The missed write is in the old generation on every owner of its old shard.
  idx = fleet_->Indexes();
  ASSERT_TRUE(idx.ok());
  const uint32_t old_shard = ShardForKey(key, 8);
  int holders = 0;
  for (const auto& g : idx->at("products").routes()) {
    if (g.generation() != r.old_generation()) continue;
    for (const auto& o : g.routes(static_cast<int>(old_shard)).owners()) {
      for (const auto& n : o.nodes()) {
        auto store = RedisStore::Create(fleet_->redis(n).address(), StoreOptions{});
        ASSERT_TRUE(store.ok());
        auto d = (*store)->Get(ShardKey{"products", r.old_generation(), old_shard}, kAnyEpoch, key);
        ASSERT_TRUE(d.ok()) << n << ": " << d.status();
        EXPECT_EQ(d->version, v) << n;
        EXPECT_EQ(d->body, "{\"missed\":true}") << n;
        ++holders;
      }
    }
  }
  EXPECT_EQ(holders, 2);
  StopAndCheck();
}

TEST_F(Reshard, VerifyCatchesADocumentAlteredOnOneNodeAndFailsThePlan) {
  ReshardSetup s;
  s.keys = 1500;
  s.rate = 100;
  Start(s);
  // A key nobody writes again, so only the backfill copies it into the shadow.
  WriterOptions wo = fleet_->WriterOptionsFor("products");
  wo.key_prefix = "alter:";
  wo.keys = 1;
  wo.streams = 1;
  wo.max_ops = 1;
  wo.load_first = true;
  wo.delete_fraction = 0;
  TestWriter one(wo);
  ASSERT_TRUE(one.Run().ok());
  ASSERT_EQ(one.stats().acked(), 1u) << "issued " << one.stats().issued << " unknown "
                                     << one.stats().unknown << " rejected " << one.stats().rejected;
  const std::string key = "alter:0";
  auto started = StartReshard(16, /*throttle=*/400);  // ~4 s of backfill
  ASSERT_TRUE(started.ok()) << started.status();
  const pb::ReshardRecord rec = started->reshard();
  // Once the shadow holds the key, change its body (same version) on one node.
  WaitFor({"backfill", "catching_up"});
  auto idx = fleet_->Indexes();
  ASSERT_TRUE(idx.ok());
  const uint32_t shard = ShardForKey(key, 16);
  std::string node;
  for (const auto& g : idx->at("products").routes()) {
    if (g.generation() == rec.new_generation()) {
      node = g.routes(static_cast<int>(shard)).owners(0).nodes(0);
    }
  }
  ASSERT_FALSE(node.empty());
  auto store = RedisStore::Create(fleet_->redis(node).address(), StoreOptions{});
  ASSERT_TRUE(store.ok());
  const ShardKey sk{"products", rec.new_generation(), shard};
  bool altered = false;
  for (int i = 0; i < 3000 && !altered; ++i) {
    auto d = (*store)->Get(sk, kAnyEpoch, key);
    if (d.ok()) {
      Mutation m{key, d->version, false, "{\"altered\":true}", 0};
      m.overwrite_same_version = true;
      auto st = fleet_->Status();
      ASSERT_TRUE(st.ok());
      auto a = (*store)->Apply(sk, st->epoch(), {m});
      ASSERT_TRUE(a.ok()) << a.status();
      altered = true;
    } else {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  ASSERT_TRUE(altered);
  pb::ReshardRecord r = WaitFor({"failed"}, absl::Seconds(120), {"retention", "done"});
  ASSERT_EQ(r.state(), pb::RESHARD_FAILED) << "the verify let an altered document through";
  EXPECT_NE(std::find(r.divergent_keys().begin(), r.divergent_keys().end(), key),
            r.divergent_keys().end())
      << r.message();
  EXPECT_EQ(LiveShards(), 8u);  // never swapped
  auto ctl = fleet_->Ctl({"reshard", "status", "--index", "products"});
  ASSERT_TRUE(ctl.ok());
  EXPECT_NE(ctl->stdout_text.find(key), std::string::npos) << ctl->stdout_text;
  // Abort drops the shadow; the index keeps its data.
  ASSERT_TRUE(Call("abort").ok());
  r = WaitFor({"aborted"}, absl::Seconds(60), {});
  EXPECT_EQ(r.state(), pb::RESHARD_ABORTED);
  EXPECT_EQ(EntriesOf(rec.new_generation(), 16), 0u);
  StopAndCheck();
}

TEST_F(Reshard, CoordinatorAndWorkerKilledMidBackfillResume) {
  ReshardSetup s;
  s.keys = 2000;
  s.rate = 150;
  s.config = [](YAML::Node& c) { c["resharding"]["backfill_concurrency"] = 2; };
  Start(s);
  ASSERT_TRUE(StartReshard(16, /*throttle=*/300).ok());  // ~7 s of backfill
  WaitFor({"backfill"});
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE(fleet_->KillCoordinator().ok());
  ASSERT_TRUE(fleet_->RestartCoordinator().ok());
  pb::ReshardRecord r = WaitFor({"backfill", "catching_up"});
  ASSERT_EQ(r.state(), pb::RESHARD_BACKFILL) << "too fast to kill a worker mid-backfill";
  ASSERT_TRUE(fleet_->KillWorker(0).ok());
  r = WaitFor({"retention"}, absl::Seconds(180));
  ASSERT_EQ(r.state(), pb::RESHARD_RETENTION);
  auto st = Status();
  ASSERT_TRUE(st.ok());
  for (const auto& e : st->events()) {
    std::cout << e.time_ms() << " " << e.from() << " -> " << e.to() << ": " << e.reason() << "\n";
  }
  ASSERT_TRUE(fleet_->RestartWorker(0).ok());
  ASSERT_TRUE(Call("complete").ok());
  r = WaitFor({"done"});
  EXPECT_EQ(EntriesOf(r.old_generation(), 8), 0u);
  StopAndCheck();
}

TEST_F(Reshard, AWriteAckedByOneGroupOnlySurvives) {
  Start({}, /*with_writer=*/false);
  // g1's nodes stopped: writes are acknowledged by g0 alone (degraded).
  ASSERT_TRUE(fleet_->redis("r2").Stop().ok());
  ASSERT_TRUE(fleet_->redis("r3").Stop().ok());
  WriterOptions wo = fleet_->WriterOptionsFor("products");
  wo.key_prefix = "onegroup:";
  wo.keys = 50;
  wo.max_ops = 50;
  wo.load_first = true;
  wo.delete_fraction = 0;
  wo.batch_timeout = absl::Seconds(20);
  TestWriter w(wo);
  ASSERT_TRUE(w.Run().ok());
  ASSERT_TRUE(fleet_->redis("r2").Cont().ok());
  ASSERT_TRUE(fleet_->redis("r3").Cont().ok());
  ASSERT_GT(w.stats().acked(), 0u);
  EXPECT_GT(w.stats().degraded, 0u) << "no write was acknowledged by one group only";
  ReshardToDone(16);
  auto report = CheckPromise(w.records(), fleet_->CheckOptionsFor("products"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

// "HH:MM-HH:MM" from now + a..b minutes (UTC).
std::string Window(int from_min, int to_min) {
  const int64_t now_min = absl::ToUnixSeconds(absl::Now()) / 60;
  auto hm = [](int64_t m) {
    m = ((m % 1440) + 1440) % 1440;
    return absl::StrFormat("%02d:%02d", m / 60, m % 60);
  };
  return hm(now_min + from_min) + "-" + hm(now_min + to_min);
}

TEST_F(Reshard, WindowsAndTheEnableSwitchGateTheStart) {
  Start({}, /*with_writer=*/false);
  // Inside (dry run: nothing changes).
  auto in = fleet_->Ctl({"reshard", "start", "--index", "products", "--new-shards", "16",
                         "--schedule-window", Window(-60, 60), "--dry-run"});
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->exit_code, 0) << in->stderr_text;
  EXPECT_NE(in->stdout_text.find("nothing was changed"), std::string::npos);
  // Inside a window that wraps midnight (start after end).
  auto wrap = fleet_->Ctl({"reshard", "start", "--index", "products", "--new-shards", "16",
                           "--schedule-window", Window(-60, -120), "--dry-run"});
  ASSERT_TRUE(wrap.ok());
  EXPECT_EQ(wrap->exit_code, 0) << wrap->stderr_text;
  // Outside (also a wrapping one): exit 1 naming the time and the windows.
  for (const std::string& w : {Window(60, 120), Window(60, -60)}) {
    auto out = fleet_->Ctl(
        {"reshard", "start", "--index", "products", "--new-shards", "16", "--schedule-window", w});
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->exit_code, 1) << out->stderr_text;
    EXPECT_NE(out->stderr_text.find("UTC) is outside"), std::string::npos) << out->stderr_text;
    EXPECT_NE(out->stderr_text.find(w), std::string::npos) << out->stderr_text;
  }
  EXPECT_EQ(Status().status().code(), absl::StatusCode::kNotFound) << "a refused start saved";
  // Outside with --force: starts, the warning is on the reshard.
  auto forced = fleet_->Ctl({"reshard", "start", "--index", "products", "--new-shards", "16",
                             "--schedule-window", Window(60, 120), "--force"});
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->exit_code, 0) << forced->stderr_text;
  EXPECT_NE(forced->stderr_text.find("warning: forced"), std::string::npos);
  auto st = Status();
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->reshard().warnings_size(), 1);
  EXPECT_NE(st->reshard().warnings(0).find("forced: now"), std::string::npos)
      << st->reshard().warnings(0);
  EXPECT_TRUE(st->reshard().force());
  ASSERT_TRUE(Call("abort").ok());
  WaitFor({"aborted"}, absl::Seconds(60), {});
  // resharding.enabled: false refuses every reshard.
  YAML::Node cfg = fleet_->options().coordinator_config;
  cfg["resharding"]["enabled"] = false;
  ASSERT_TRUE(fleet_->WriteCoordinatorConfig(cfg).ok());
  ASSERT_TRUE(fleet_->RestartCoordinator().ok());
  auto off = fleet_->Ctl({"reshard", "start", "--index", "products", "--new-shards", "16"});
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->exit_code, 1);
  EXPECT_NE(off->stderr_text.find("resharding.enabled is false"), std::string::npos)
      << off->stderr_text;
}

// `reshard cutover --force` (issue 22 item 3) on a reshard held before its swap:
// the coordinator restarts mid-backfill with a resharding window that opens in
// an hour, so the converged catch-up waits in catching_up/verify for it (a
// deterministic hold; the not-converging catch-up that a forced cutover also
// ends is ReshardStepperTest.ForcedCutoverSwapsAfterTheRoundInFlight...). Forced,
// the swap runs at once (outside the window, as a move's forced cutover) while the
// writer keeps writing, and the promise holds. Without --force, for an unknown
// index, or after the swap, the call is refused and changes nothing.
TEST_F(Reshard, ForcedCutoverSwapsAReshardHeldBeforeItsSwap) {
  ReshardSetup setup;
  setup.groups = {2};
  setup.shards = 4;
  setup.rate = 100;
  Start(setup);
  auto started = StartReshard(8, /*throttle=*/60);  // 600 documents: a backfill of seconds
  ASSERT_TRUE(started.ok()) << started.status();
  WaitFor({"backfill"}, absl::Seconds(60));
  YAML::Node cfg = fleet_->options().coordinator_config;
  cfg["resharding"]["allowed_windows"].push_back(Window(60, 120));
  ASSERT_TRUE(fleet_->WriteCoordinatorConfig(cfg).ok());
  ASSERT_TRUE(fleet_->RestartCoordinator().ok());
  pb::ReshardRecord r;
  for (int i = 0; i < 600; ++i) {
    auto st = Status();
    if (st.ok()) {
      r = st->reshard();
      ASSERT_TRUE(r.state() == pb::RESHARD_BACKFILL || r.state() == pb::RESHARD_CATCHING_UP ||
                  r.state() == pb::RESHARD_VERIFY)
          << ReshardStateName(r.state()) << ": " << r.message();
      if (r.message().find("waiting for a resharding window") != std::string::npos) break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_NE(r.message().find("waiting for a resharding window"), std::string::npos)
      << ReshardStateName(r.state()) << ": " << r.message();

  auto unforced = fleet_->Ctl({"reshard", "cutover", "--index", "products"});
  ASSERT_TRUE(unforced.ok());
  EXPECT_EQ(unforced->exit_code, 2) << unforced->stderr_text;
  EXPECT_NE(unforced->stderr_text.find("force:"), std::string::npos) << unforced->stderr_text;
  auto unknown = fleet_->Ctl({"reshard", "cutover", "--index", "nope", "--force"});
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->exit_code, 1) << unknown->stderr_text;
  EXPECT_NE(unknown->stderr_text.find("index: unknown index 'nope'"), std::string::npos)
      << unknown->stderr_text;
  auto still = Status();
  ASSERT_TRUE(still.ok());
  EXPECT_FALSE(still->reshard().force_cutover()) << "a refused call changed the reshard";

  auto forced =
      fleet_->Ctl({"reshard", "cutover", "--index", "products", "--force", "--output", "json"});
  ASSERT_TRUE(forced.ok());
  ASSERT_EQ(forced->exit_code, 0) << forced->stderr_text;
  auto j = nlohmann::json::parse(forced->stdout_text);
  EXPECT_EQ(j["reshard"]["force_cutover"], true) << forced->stdout_text;
  const pb::ReshardRecord done = WaitFor({"retention"}, absl::Seconds(120));
  ASSERT_EQ(done.state(), pb::RESHARD_RETENTION) << done.message();
  EXPECT_FALSE(done.force_cutover());
  EXPECT_EQ(LiveShards(), 8u);
  // The operator's call and the swap it let through are both in the events.
  auto st = Status();
  ASSERT_TRUE(st.ok());
  bool asked = false, paused = false;
  for (const auto& e : st->events()) {
    asked |= e.from() == e.to() &&
             e.reason().find("cutover forced by the operator (") != std::string::npos;
    paused |= e.to() == "swap_paused";
  }
  EXPECT_TRUE(asked);
  EXPECT_TRUE(paused);
  auto late = fleet_->Ctl({"reshard", "cutover", "--index", "products", "--force"});
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->exit_code, 1) << late->stderr_text;
  EXPECT_NE(late->stderr_text.find("a cutover is forced only before the swap"), std::string::npos)
      << late->stderr_text;
  StopAndCheck();
}

// Issue 19 item 5: convergence is the final delta's estimated duration against
// max_write_stall, and catch_up_max applies to reshards. Every round trip to r0
// takes 60 ms more (a proxy), so a catch-up round lasts over 100 ms while the
// writer keeps each round non-empty; a stall budget of 10 ms (max_write_stall
// 20 ms) no round fits: past catch_up_max (1 s) the reshard says "not
// converging" in its status and in `reshard status`, and goes on catching up;
// the operator raises max_write_stall with `config reload` and the reshard swaps
// by itself.
TEST_F(Reshard, ACatchUpThatDoesNotFitTheStallBudgetSaysNotConvergingUntilTheOperatorActs) {
  ReshardSetup setup;
  setup.groups = {2};
  setup.shards = 4;
  setup.keys = 400;
  setup.rate = 400;
  setup.proxied = {"r0"};
  setup.config = [](YAML::Node& c) {
    c["migration"]["catch_up_threshold"] = 0;
    c["migration"]["drain_timeout"] = "10ms";
    c["migration"]["max_write_stall"] = "20ms";
    c["migration"]["catch_up_max"] = "1s";
    c["resharding"]["verify_before_swap"] = false;
  };
  Start(setup);
  fleet_->node("r0").proxy->Delay(absl::Milliseconds(30));  // each way
  auto started = StartReshard(8);
  ASSERT_TRUE(started.ok()) << started.status();
  pb::ReshardRecord r;
  for (int i = 0; i < 600 && !r.not_converging(); ++i) {
    auto st = Status();
    ASSERT_TRUE(st.ok()) << st.status();
    r = st->reshard();
    ASSERT_TRUE(r.state() == pb::RESHARD_SHADOW || r.state() == pb::RESHARD_DUAL_WRITE ||
                r.state() == pb::RESHARD_BACKFILL || r.state() == pb::RESHARD_CATCHING_UP)
        << ReshardStateName(r.state()) << ": " << r.message();
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(r.not_converging()) << r.message();
  EXPECT_EQ(r.state(), pb::RESHARD_CATCHING_UP);
  EXPECT_EQ(r.message().rfind("not converging after 1s: catch-up round ", 0), 0u) << r.message();
  EXPECT_NE(r.message().find("above half of max_write_stall (10 ms)"), std::string::npos)
      << r.message();
  EXPECT_GT(r.estimated_final_delta_ms(), 10u);
  EXPECT_GT(r.copy_rate_docs_per_s(), 0u);
  auto shown = fleet_->Ctl({"reshard", "status", "--index", "products"});
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ(shown->exit_code, 0) << shown->stderr_text;
  EXPECT_NE(shown->stdout_text.find("(NOT CONVERGING)"), std::string::npos) << shown->stdout_text;
  EXPECT_NE(shown->stdout_text.find("not converging after 1s"), std::string::npos)
      << shown->stdout_text;
  // `reshard watch` (not a terminal: events only) prints it as an event.
  auto watched = fleet_->Ctl({"reshard", "watch", "--index", "products"}, absl::Seconds(3));
  ASSERT_TRUE(watched.ok());
  EXPECT_NE(watched->stdout_text.find("catching_up -> catching_up  not converging after 1s"),
            std::string::npos)
      << watched->stdout_text;
  // The operator gives the swap a budget: it converges and swaps on its own.
  YAML::Node cfg = fleet_->options().coordinator_config;
  cfg["migration"]["max_write_stall"] = "2s";
  ASSERT_TRUE(fleet_->WriteCoordinatorConfig(cfg).ok());
  auto reload = fleet_->Ctl({"config", "reload"});
  ASSERT_TRUE(reload.ok());
  ASSERT_EQ(reload->exit_code, 0) << reload->stderr_text;
  const pb::ReshardRecord done = WaitFor({"retention"}, absl::Seconds(60));
  ASSERT_EQ(done.state(), pb::RESHARD_RETENTION) << done.message();
  EXPECT_FALSE(done.not_converging());
  EXPECT_EQ(LiveShards(), 8u);
  StopAndCheck();
}

TEST_F(Reshard, BadRequestsAreRefusedAndChangeNothing) {
  // Documents to copy, so the throttled backfill below lasts seconds (an empty
  // index passes backfill, catch-up and verify within one poll).
  ReshardSetup setup;
  setup.rate = 50;
  Start(setup);
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{"--index", "products", "--new-shards", "8"}, 2, "new_shards"},
      {{"--index", "products", "--new-shards", "0"}, 2, "new_shards"},
      {{"--index", "products", "--new-shards", "70000"}, 2, "new_shards"},
      {{"--index", "nope", "--new-shards", "16"}, 1, "index"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"reshard", "start"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = fleet_->Ctl(args);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, c.exit_code) << r->stderr_text;
    EXPECT_NE(r->stderr_text.find(c.names), std::string::npos) << r->stderr_text;
  }
  EXPECT_EQ(Status().status().code(), absl::StatusCode::kNotFound);
  // status/watch/abort of an unknown index, or of an index never resharded: exit 1.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"reshard", "status", "--index", "nope"},
        std::vector<std::string>{"reshard", "watch", "--index", "products"},
        std::vector<std::string>{"reshard", "abort", "--index", "products"}}) {
    auto r = fleet_->Ctl(args);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, 1) << args[1] << ": " << r->stderr_text;
    EXPECT_NE(r->stderr_text.find("index"), std::string::npos) << r->stderr_text;
  }
  auto first = StartReshard(16, /*throttle=*/50);
  ASSERT_TRUE(first.ok()) << first.status();
  // A second reshard while one runs; a topology plan during the reshard.
  auto again = StartReshard(12);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("reshard refused"), std::string::npos);
  WaitFor({"backfill", "catching_up", "verify"});
  auto addr = fleet_->AddNodeProcess("r9", "g0");
  ASSERT_TRUE(addr.ok());
  pb::CreatePlanRequest plan;
  plan.set_kind(pb::PLAN_ADD_NODE);
  plan.set_node_id("r9");
  plan.set_group("g0");
  plan.set_address(*addr);
  plan.set_store("redis");
  auto p = fleet_->CreatePlan(plan);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition) << p.status();
  // Rollback before the swap and complete before retention are refused.
  EXPECT_EQ(Call("rollback").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Call("complete").status().code(), absl::StatusCode::kFailedPrecondition);
  auto st = Status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->reshard().id(), first->reshard().id());
  ASSERT_TRUE(Call("abort").ok());
  WaitFor({"aborted"}, absl::Seconds(60), {});
  EXPECT_EQ(LiveShards(), 8u);
  StopAndCheck();  // the refused requests and the abort lost nothing
}

}  // namespace
}  // namespace miroir::testing
