// After cleanup (DESIGN §6 step 7) the leaving node holds nothing of the moved
// shards, and a write carrying an epoch older than the cleanup's fence is
// refused there (a zombie writer cannot recreate the shard).
#include <gtest/gtest.h>

#include "harness/move_scenario.h"
#include "worker/stores/store_adapter.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

TEST(MoveCleanup, LeavingNodeIsEmptyAndFencedAgainstOldEpochs) {
  TempDir tmp("cleanup");
  ScenarioOptions so;
  so.fleet.group_sizes = {2};
  so.fleet.workers = 2;
  so.fleet.indexes = {{"products", 8, 1}};
  auto sc = MoveScenario::Start(tmp.path(), so);
  ASSERT_TRUE(sc.ok()) << sc.status();
  Fleet& f = (*sc)->fleet();
  auto before = f.Status();
  ASSERT_TRUE(before.ok());
  const uint64_t old_epoch = before->epoch();

  auto plan = (*sc)->Plan(RemoveNodeRequest("r0"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_GT(plan->moves_size(), 0);
  auto end = f.WaitForPlanEnd(plan->id(), absl::Seconds(45));
  ASSERT_TRUE(end.ok()) << end.status();
  ASSERT_EQ(end->state(), pb::PLAN_DONE) << DescribePlan(*end);

  auto report = (*sc)->StopAndCheck();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();

  // Read r0 directly: empty shards, fences raised, old-epoch writes refused.
  auto store = MakeStoreAdapter("redis", f.redis("r0").address(), StoreOptions{});
  ASSERT_TRUE(store.ok()) << store.status();
  for (const auto& m : end->moves()) {
    ShardKey key{m.index(), m.generation(), m.shard()};
    auto stats = (*store)->Stats(key);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->documents + stats->tombstones, 0u) << "shard " << m.shard();
    auto fence = (*store)->GetFence(key);
    ASSERT_TRUE(fence.ok()) << fence.status();
    EXPECT_GT(*fence, old_epoch) << "shard " << m.shard();

    Mutation put;
    put.pk = "zombie";
    put.version = Version{~uint64_t{0} >> 1, 1};
    put.body = "{\"zombie\":true}";
    auto applied = (*store)->Apply(key, old_epoch, {put});
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->size(), 1u);
    EXPECT_EQ((*applied)[0].outcome, ApplyOutcome::kFenced) << "shard " << m.shard();
    auto after = (*store)->Stats(key);
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->documents, 0u);
  }
}

}  // namespace
}  // namespace miroir::testing
