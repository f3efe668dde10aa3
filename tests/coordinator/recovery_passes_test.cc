// Recovery-pass scheduling (coordinator/recovery_passes.h, DESIGN §4): pure
// decisions over a hand-built ClusterState.
#include "coordinator/recovery_passes.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace miroir::coordinator {
namespace {

using Strings = std::vector<std::string>;

constexpr uint64_t kGen = 7;

Strings Vec(const google::protobuf::RepeatedPtrField<std::string>& f) {
  return {f.begin(), f.end()};
}

void AddNode(ClusterState* s, const std::string& id, const std::string& group) {
  v1::Node n;
  n.set_id(id);
  n.set_group(group);
  n.set_status(v1::NODE_ACTIVE);
  s->nodes[id] = n;
}

void SetOwners(v1::ShardRoute* r, const std::vector<std::pair<std::string, Strings>>& groups) {
  r->clear_owners();
  r->clear_write_set();
  r->clear_acking_set();
  r->set_sets_are_owners(true);
  for (const auto& [g, nodes] : groups) {
    v1::GroupOwners* o = r->add_owners();
    o->set_group(g);
    for (const auto& n : nodes) o->add_nodes(n);
  }
}

// Two groups, RF 1: shard 0 on r0 (g0) and s0 (g1), shard 1 on r1 (g0) and s0.
ClusterState TwoGroups() {
  ClusterState s;
  s.epoch = 5;
  s.next_id = 100;
  s.group_order = {"g0", "g1"};
  AddNode(&s, "r0", "g0");
  AddNode(&s, "r1", "g0");
  AddNode(&s, "s0", "g1");
  v1::GenerationRoute g;
  g.set_index("products");
  g.set_generation(kGen);
  g.set_shards(2);
  g.set_rf(1);
  g.set_role(v1::GENERATION_LIVE);
  SetOwners(g.add_routes(), {{"g0", {"r0"}}, {"g1", {"s0"}}});
  g.mutable_routes(0)->set_shard(0);
  SetOwners(g.add_routes(), {{"g0", {"r1"}}, {"g1", {"s0"}}});
  g.mutable_routes(1)->set_shard(1);
  s.generations[kGen] = g;
  v1::Index ix;
  ix.set_name("products");
  ix.set_shards(2);
  ix.set_rf(1);
  ix.set_live_generation(kGen);
  s.indexes["products"] = ix;
  return s;
}

v1::MissReport Report(const std::string& node, uint32_t shard) {
  v1::MissReport r;
  r.set_worker_id("w1");
  v1::Miss* m = r.add_misses();
  m->set_node(node);
  m->set_index("products");
  m->set_generation(kGen);
  m->set_shard(shard);
  m->set_count(1);
  return r;
}

// Commits `c` into `s` the way the coordinator does (tasks land pending).
void Apply(const Change& c, ClusterState* s) { ApplyChange(c, s->epoch, s); }

TEST(RecoveryPasses, AMissSchedulesOneMissPassFromThePeers) {
  ClusterState s = TwoGroups();
  Change c;
  EXPECT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &c), 1u);
  ASSERT_EQ(c.tasks.size(), 1u);
  const v1::Task& t = c.tasks.begin()->second;
  EXPECT_TRUE(IsRecoveryPass(t));
  EXPECT_TRUE(IsMissPass(t));
  EXPECT_EQ(t.kind(), v1::TASK_RECONCILE);
  EXPECT_EQ(t.move_id(), 0u);
  EXPECT_EQ(Vec(t.targets()), Strings{"r0"});
  EXPECT_EQ(Vec(t.sources()), Strings{"s0"});
  EXPECT_EQ(t.epoch(), 5u);
  EXPECT_EQ(t.batch_size(), 200u);
  EXPECT_TRUE(t.repair());
  // The same miss twice in one report: one pass.
  Change c2;
  v1::MissReport twice = Report("r0", 0);
  *twice.add_misses() = twice.misses(0);
  EXPECT_EQ(ScheduleMissPasses(s, twice, 200, &c2), 1u);
}

TEST(RecoveryPasses, DeduplicatesOnlyAgainstPassesNotStarted) {
  ClusterState s = TwoGroups();
  Change c;
  ASSERT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &c), 1u);
  Apply(c, &s);
  const uint64_t first = c.tasks.begin()->first;
  // Pending: its scan has not begun, it will see the new write.
  Change again;
  EXPECT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &again), 0u);
  // Failed, waiting for its retry: the retry scans from the start too.
  s.tasks[first].status = TaskRecord::Status::kFailed;
  EXPECT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &again), 0u);
  // Leased: it may already have passed the key, so a new pass is needed.
  s.tasks[first].status = TaskRecord::Status::kLeased;
  Change while_running;
  EXPECT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &while_running), 1u);
  Apply(while_running, &s);
  // ...and further misses fold into that second, unstarted one.
  Change third;
  EXPECT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &third), 0u);
  // Another node or shard is its own pass.
  EXPECT_EQ(ScheduleMissPasses(s, Report("s0", 0), 200, &third), 1u);
  EXPECT_EQ(ScheduleMissPasses(s, Report("r1", 1), 200, &third), 1u);
}

TEST(RecoveryPasses, SkipsUnknownAndNotWrittenTargets) {
  ClusterState s = TwoGroups();
  Change c;
  EXPECT_EQ(ScheduleMissPasses(s, Report("nope", 0), 200, &c), 0u);
  EXPECT_EQ(ScheduleMissPasses(s, Report("r1", 0), 200, &c), 0u);  // not in shard 0
  EXPECT_EQ(ScheduleMissPasses(s, Report("r0", 9), 200, &c), 0u);  // no such shard
  s.nodes["r0"].set_status(v1::NODE_FAILED);
  EXPECT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &c), 0u);
  EXPECT_TRUE(c.tasks.empty());
}

TEST(RecoveryPasses, AllShardsFlagCoversEveryShardOfTheNode) {
  ClusterState s = TwoGroups();
  v1::MissReport r;
  v1::Miss* m = r.add_misses();
  m->set_node("s0");
  m->set_all_shards(true);
  Change c;
  EXPECT_EQ(ScheduleMissPasses(s, r, 200, &c), 2u);  // s0 holds shards 0 and 1
  for (const auto& [id, t] : c.tasks) EXPECT_EQ(Vec(t.targets()), Strings{"s0"});
  m->set_node("r1");
  Change c2;
  EXPECT_EQ(ScheduleMissPasses(s, r, 200, &c2), 1u);
  EXPECT_EQ(c2.tasks.begin()->second.shard(), 1u);
}

TEST(RecoveryPasses, ShardPassesCoverEveryWrittenShardOnce) {
  ClusterState s = TwoGroups();
  Change c;
  EXPECT_EQ(ScheduleShardPasses(s, 200, &c), 2u);
  for (const auto& [id, t] : c.tasks) {
    EXPECT_TRUE(IsRecoveryPass(t));
    EXPECT_FALSE(IsMissPass(t)) << "a shard pass names no stale node";
    EXPECT_TRUE(t.sources().empty());
    EXPECT_EQ(t.targets_size(), 2);
  }
  Apply(c, &s);
  Change again;
  EXPECT_EQ(ScheduleShardPasses(s, 200, &again), 0u);
  // A dropped generation is not written: nothing for it.
  ClusterState d = TwoGroups();
  d.generations[kGen].set_role(v1::GENERATION_DROPPED);
  Change none;
  EXPECT_EQ(ScheduleShardPasses(d, 200, &none), 0u);
}

TEST(RecoveryPasses, FailedPassIsKeptAndRecomputedNotDropped) {
  ClusterState s = TwoGroups();
  Change c;
  ASSERT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &c), 1u);
  Apply(c, &s);
  TaskRecord& t = s.tasks.begin()->second;
  t.status = TaskRecord::Status::kFailed;
  t.retryable = false;  // e.g. fenced
  t.failures = 1000;    // far past task_retries
  RecoveryPassStep step = StepRecoveryPass(s, t, StateRoutes(s));
  EXPECT_EQ(step.action, RecoveryPassStep::Action::kKeep);
  t.status = TaskRecord::Status::kLeased;
  EXPECT_EQ(StepRecoveryPass(s, t, StateRoutes(s)).action, RecoveryPassStep::Action::kKeep);
  t.status = TaskRecord::Status::kDone;
  EXPECT_EQ(StepRecoveryPass(s, t, StateRoutes(s)).action, RecoveryPassStep::Action::kDelete);
}

TEST(RecoveryPasses, FailedTargetDropsThePass) {
  ClusterState s = TwoGroups();
  Change c;
  ASSERT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &c), 1u);
  Apply(c, &s);
  TaskRecord& t = s.tasks.begin()->second;
  t.status = TaskRecord::Status::kFailed;
  s.nodes["r0"].set_status(v1::NODE_FAILED);  // the restore covers it
  RecoveryPassStep step = StepRecoveryPass(s, t, StateRoutes(s));
  EXPECT_EQ(step.action, RecoveryPassStep::Action::kDelete);
}

TEST(RecoveryPasses, FailedSourceIsLeftOut) {
  ClusterState s = TwoGroups();
  AddNode(&s, "s1", "g1");
  SetOwners(s.generations[kGen].mutable_routes(0), {{"g0", {"r0"}}, {"g1", {"s0", "s1"}}});
  Change c;
  ASSERT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &c), 1u);
  Apply(c, &s);
  TaskRecord& t = s.tasks.begin()->second;
  EXPECT_EQ(Vec(t.task.sources()), (Strings{"s0", "s1"}));
  s.nodes["s1"].set_status(v1::NODE_FAILED);
  RecoveryPassStep step = StepRecoveryPass(s, t, StateRoutes(s));
  ASSERT_EQ(step.action, RecoveryPassStep::Action::kUpdate);
  EXPECT_EQ(Vec(step.task.sources()), Strings{"s0"});
  EXPECT_EQ(Vec(step.task.targets()), Strings{"r0"});
  EXPECT_EQ(step.task.id(), t.task.id());
}

TEST(RecoveryPasses, PassWhoseShardMovedAwayFollowsTheGroupsNewOwner) {
  // r0 missed a write on shard 0; a cutover then moved shard 0 from r0 to r1 in
  // g0 (r1 copied r0's stale copy). The pass, fenced by that cutover, runs again
  // on the shard's current owner in r0's group.
  ClusterState s = TwoGroups();
  Change c;
  ASSERT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &c), 1u);
  Apply(c, &s);
  TaskRecord& t = s.tasks.begin()->second;
  t.status = TaskRecord::Status::kFailed;
  t.error = "r0: fenced at epoch 9, above the task's epoch 5";
  // During the move (write set O ∪ N) r0 is still written: it stays the target.
  v1::ShardRoute dual = s.generations[kGen].routes(0);
  dual.set_sets_are_owners(false);
  *dual.mutable_write_set() = dual.owners();
  dual.mutable_write_set(0)->add_nodes("r1");
  *dual.mutable_acking_set() = dual.owners();
  RouteOf during = [&](uint64_t, uint32_t) { return &dual; };
  RecoveryPassStep step = StepRecoveryPass(s, t, during);
  ASSERT_EQ(step.action, RecoveryPassStep::Action::kUpdate);  // r1 is a source now
  EXPECT_EQ(Vec(step.task.targets()), Strings{"r0"});
  EXPECT_EQ(Vec(step.task.sources()), (Strings{"r1", "s0"}));
  // After E3 the owners are N: r0 left, r1 inherited its copy.
  SetOwners(s.generations[kGen].mutable_routes(0), {{"g0", {"r1"}}, {"g1", {"s0"}}});
  step = StepRecoveryPass(s, t, StateRoutes(s));
  ASSERT_EQ(step.action, RecoveryPassStep::Action::kUpdate);
  EXPECT_EQ(Vec(step.task.targets()), Strings{"r1"});
  EXPECT_EQ(Vec(step.task.sources()), Strings{"s0"});
  EXPECT_TRUE(IsMissPass(step.task));
}

TEST(RecoveryPasses, PendingPassUnchangedIsKept) {
  ClusterState s = TwoGroups();
  Change c;
  ASSERT_EQ(ScheduleMissPasses(s, Report("r0", 0), 200, &c), 1u);
  Apply(c, &s);
  EXPECT_EQ(StepRecoveryPass(s, s.tasks.begin()->second, StateRoutes(s)).action,
            RecoveryPassStep::Action::kKeep);
  // Its generation dropped (a reshard's cleanup): no longer needed.
  s.generations[kGen].set_role(v1::GENERATION_DROPPED);
  EXPECT_EQ(StepRecoveryPass(s, s.tasks.begin()->second, StateRoutes(s)).action,
            RecoveryPassStep::Action::kDelete);
}

}  // namespace
}  // namespace miroir::coordinator
