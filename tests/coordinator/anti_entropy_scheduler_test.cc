// Anti-entropy scheduling (pure): scope, rotation, busy shards, the GC bound,
// the pass task and folding results; config validation of the grace.
#include "coordinator/anti_entropy_scheduler.h"

#include <gtest/gtest.h>

#include "coordinator/routing_tables.h"

namespace miroir::coordinator {
namespace {

ClusterState TwoIndexes() {
  ClusterState s;
  for (const auto& [name, gen, shards] :
       std::vector<std::tuple<std::string, uint64_t, uint32_t>>{{"a", 1, 4}, {"b", 2, 2}}) {
    v1::Index ix;
    ix.set_name(name);
    ix.set_shards(shards);
    ix.set_rf(2);
    ix.set_live_generation(gen);
    auto* g = ix.add_generations();
    g->set_id(gen);
    g->set_shards(shards);
    g->set_role(v1::GENERATION_LIVE);
    s.indexes[name] = ix;
    s.generations[gen] =
        BuildInitialRoute(name, gen, shards, 2, {GroupNodes{"g0", {"n0", "n1", "n2"}}});
  }
  for (const char* n : {"n0", "n1", "n2"}) {
    v1::Node node;
    node.set_id(n);
    node.set_group("g0");
    node.set_status(v1::NODE_ACTIVE);
    s.nodes[n] = node;
  }
  return s;
}

std::vector<std::string> Names(const std::vector<AeShard>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(s.index + std::to_string(s.shard));
  return out;
}

TEST(AeScheduler, ScopeIsEveryLiveShardOrTheRangeOfOneIndex) {
  ClusterState s = TwoIndexes();
  v1::AntiEntropyRun all;
  EXPECT_EQ(Names(RunScope(s, all)),
            (std::vector<std::string>{"a0", "a1", "a2", "a3", "b0", "b1"}));
  v1::AntiEntropyRun one;
  one.set_index("a");
  one.set_has_shards(true);
  one.set_shard_from(1);
  one.set_shard_to(2);
  EXPECT_EQ(Names(RunScope(s, one)), (std::vector<std::string>{"a1", "a2"}));
}

TEST(AeScheduler, AnOperatorRunIssuesItsScopeOnceAScheduledRoundRotatesAndWraps) {
  ClusterState s = TwoIndexes();
  v1::AntiEntropyRun op;
  op.set_total(6);
  EXPECT_EQ(Names(NextShards(s, &op, 4)), (std::vector<std::string>{"a0", "a1", "a2", "a3"}));
  EXPECT_EQ(Names(NextShards(s, &op, 4)), (std::vector<std::string>{"b0", "b1"}));
  EXPECT_TRUE(NextShards(s, &op, 4).empty());

  v1::AntiEntropyRun round;
  round.set_scheduled(true);
  round.set_cursor_index("b");
  round.set_cursor_shard(1);
  round.set_total(3);
  EXPECT_EQ(Names(NextShards(s, &round, 10)), (std::vector<std::string>{"b1", "a0", "a1"}));
  EXPECT_EQ(round.cursor_index(), "a");
  EXPECT_EQ(round.cursor_shard(), 2u);  // the next round resumes at a2
}

TEST(AeScheduler, AShardMidMoveOrAnIndexInReshardIsBusy) {
  ClusterState s = TwoIndexes();
  AeShard a1{"a", 1, 4, 1};
  EXPECT_EQ(BusyReason(s, a1), "");
  v1::Move m;
  m.set_id(9);
  m.set_generation(1);
  m.set_shard(1);
  m.set_state(v1::MOVE_COPYING);
  s.moves[9] = m;
  EXPECT_NE(BusyReason(s, a1).find("move 9"), std::string::npos);
  s.moves[9].set_state(v1::MOVE_DONE);
  EXPECT_EQ(BusyReason(s, a1), "");
  auto* shadow = s.indexes["a"].add_generations();
  shadow->set_id(5);
  shadow->set_role(v1::GENERATION_RETAINED);
  EXPECT_NE(BusyReason(s, a1).find("retention"), std::string::npos);
}

TEST(AeScheduler, PurgeBoundOnlyForARepairingPassOverEveryReplica) {
  AntiEntropyConfig cfg;
  cfg.tombstone_grace = absl::Hours(1);
  const int64_t now = 10 * 3600 * 1000;
  EXPECT_EQ(PurgeBound(now, cfg, absl::Seconds(1), true, true), now - 3600 * 1000 - 1000);
  EXPECT_EQ(PurgeBound(now, cfg, absl::Seconds(1), false, true), 0);
  EXPECT_EQ(PurgeBound(now, cfg, absl::Seconds(1), true, false), 0);

  ClusterState s = TwoIndexes();
  v1::AntiEntropyRun run;
  run.set_id(3);
  run.set_repair(true);
  AeShard a0{"a", 1, 4, 0};
  v1::Task t = MakePassTask(s, a0, run, cfg, absl::Seconds(1), now);
  EXPECT_EQ(t.kind(), v1::TASK_AE_PASS);
  EXPECT_EQ(t.sources_size(), 2);
  EXPECT_GT(t.purge_tombstones_before_ms(), 0);
  EXPECT_EQ(t.ae_run_id(), 3u);
  // A failed owner is not read, so nothing may be purged.
  s.nodes[t.sources(0)].set_status(v1::NODE_FAILED);
  v1::Task degraded = MakePassTask(s, a0, run, cfg, absl::Seconds(1), now);
  EXPECT_EQ(degraded.sources_size(), 1);
  EXPECT_EQ(degraded.purge_tombstones_before_ms(), 0);
}

TEST(AeScheduler, FoldCountsAPassIntoItsRun) {
  v1::Task t;
  t.set_index("a");
  t.set_shard(2);
  t.set_repair(true);
  v1::TaskResult r;
  r.set_mismatches(3);
  r.set_documents(4);
  r.set_replicas_reached(2);
  v1::AntiEntropyRun run;
  v1::ShardPass p = FoldPass(t, r, "", 77, &run);
  EXPECT_EQ(p.mismatches(), 3u);
  EXPECT_EQ(p.repaired(), 4u);
  EXPECT_EQ(run.done(), 1u);
  EXPECT_EQ(run.repaired(), 4u);
  v1::ShardPass f = FoldPass(t, r, "boom", 78, &run);
  EXPECT_EQ(f.error(), "boom");
  EXPECT_EQ(run.failed(), 1u);
  EXPECT_EQ(run.mismatches(), 3u);
}

TEST(AeScheduler, AGraceShorterThanTheIntervalIsRefusedNamingBoth) {
  CoordinatorConfig c;
  c.anti_entropy.schedule = absl::Hours(6);
  c.anti_entropy.tombstone_grace = absl::Hours(1);
  absl::Status st = ValidateCoordinatorConfig(c);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("anti_entropy.tombstone_grace"), std::string::npos);
  EXPECT_NE(st.message().find("anti_entropy.schedule"), std::string::npos);
  c.anti_entropy.tombstone_grace = absl::Hours(6);
  EXPECT_TRUE(ValidateCoordinatorConfig(c).ok());
}

}  // namespace
}  // namespace miroir::coordinator
