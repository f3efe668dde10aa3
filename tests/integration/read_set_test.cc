// Reads through DataPlane.Get answer from the shard's read set (DESIGN §4
// "Reads", docs/worker.md "Reads"): owners minus failed nodes, minus nodes
// joining or rejoining the shard, minus nodes with a pending recovery pass; the
// highest version among q nodes of one group's read set wins. Every test reads
// WITHOUT an after_version token (a reader that is not the writer), through the
// real workers, and compares with what the writer was acknowledged.
#include <gtest/gtest.h>

#include <algorithm>

#include "chaos/chaos_util.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/read_back.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

// Writes every key of doc:0..doc:keys-1 once (puts, or deletes) through
// `workers`, and returns what was acknowledged. Fails unless every write was.
// `stats` (if given) sums the acknowledged writes and keeps the longest batch.
absl::StatusOr<std::map<std::string, KeyRecord>> WriteEveryKey(
    Fleet& f, int keys, bool deletes, const std::vector<std::string>& workers,
    WriterStats* stats = nullptr) {
  WriterOptions w = f.WriterOptionsFor();
  w.worker_addresses = workers;
  w.keys = keys;
  w.load_first = true;
  w.load_deletes = deletes;
  w.load_only = true;
  w.batch_size = 50;
  w.max_duration = absl::Seconds(120);
  w.seed = ChaosSeed();
  TestWriter writer(w);
  if (absl::Status s = writer.Run(); !s.ok()) return s;
  const WriterStats st = writer.stats();
  const uint64_t acked = deletes ? st.acked_deletes : st.acked_puts;
  if (stats != nullptr) {
    stats->acked_puts += st.acked_puts;
    stats->acked_deletes += st.acked_deletes;
    stats->max_batch_latency = std::max(stats->max_batch_latency, st.max_batch_latency);
  }
  if (acked != static_cast<uint64_t>(keys)) {
    return absl::InternalError(absl::StrCat(acked, " of ", keys, " writes acknowledged; unknown ",
                                            st.unknown, ", rejected ", st.rejected));
  }
  return writer.records();
}

// `base` with every key of `later` replaced by its later record.
std::map<std::string, KeyRecord> Merge(std::map<std::string, KeyRecord> base,
                                       const std::map<std::string, KeyRecord>& later) {
  for (const auto& [k, rec] : later) base[k] = rec;
  return base;
}

// Live documents `node` holds in the live generation (read through ReadShard).
uint64_t LiveDocsOn(Fleet& f, const std::string& node, uint32_t shards) {
  uint64_t live = 0;
  for (uint32_t s = 0; s < shards; ++s) {
    std::string after;
    for (int page = 0; page < 1000; ++page) {
      pb::ReadShardRequest req;
      req.set_node(node);
      req.set_index("products");
      req.set_shard(s);
      req.set_after_pk(after);
      pb::ReadShardResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      if (!f.dataplane(0).ReadShard(&ctx, req, &resp).ok()) break;
      for (const auto& d : resp.documents()) live += d.tombstone() ? 0 : 1;
      if (resp.done() || resp.documents().empty()) break;
      after = resp.documents(resp.documents_size() - 1).pk();
    }
  }
  return live;
}

struct Shape {
  const char* name;
  std::vector<int> group_sizes;
  uint32_t rf;
};

void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

class FailedNodeReads : public ::testing::TestWithParam<Shape> {};

// The run issue 16 reported: `nodes fail r1` with r1 still running, 2,000
// deletes acknowledged, then read back through Get. Before the fix (Get answered
// from the first owner that answered, failed nodes included) 776 of 2,000 read
// back as found for RG2_RF1 and 250 of 2,000 for RG1_RF3, every one answered by r1.
TEST_P(FailedNodeReads, DeletesAcknowledgedWhileANodeIsFailedAreNotFound) {
  constexpr int kKeys = 2000;
  constexpr uint32_t kShards = 8;
  TempDir tmp("reads-failed");
  FleetOptions fo;
  fo.group_sizes = GetParam().group_sizes;
  fo.indexes = {{"products", kShards, GetParam().rf}};
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  WriterStats written;
  auto loaded = WriteEveryKey(f, kKeys, /*deletes=*/false, f.worker_addresses(), &written);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(MarkNodeFailed(f, "r1").ok());
  ASSERT_TRUE(f.WaitForWorkers(f.worker_count()).ok());
  auto deleted = WriteEveryKey(f, kKeys, /*deletes=*/true, f.worker_addresses(), &written);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  // r1 still runs and still holds what was deleted while it was failed: the
  // reads below could find those documents.
  ASSERT_GT(LiveDocsOn(f, "r1", kShards), 0u);

  ReadBackOptions ro;
  ro.worker_addresses = f.worker_addresses();
  ReadBackReport r = ReadBack(*deleted, ro);
  EXPECT_EQ(r.keys_read, static_cast<uint64_t>(kKeys));
  EXPECT_EQ(r.found_deleted, 0u) << r.Summary();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.answered_by["r1"], 0u) << "a failed node answered a read";
  // The live owners hold every acknowledged delete (r1, failed, is not judged).
  CheckOptions co = f.CheckOptionsFor();
  co.skip_nodes = {"r1"};
  auto check = CheckPromise(*deleted, co);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_TRUE(check->ok()) << check->Summary();
  RecordChaosResult("16.3",
                    absl::StrCat("nodes fail r1 (still running), ", kKeys,
                                 " deletes acked, read back; ", GetParam().name),
                    *check, written, static_cast<int64_t>(r.wrong()));
}

INSTANTIATE_TEST_SUITE_P(Shapes, FailedNodeReads,
                         ::testing::Values(Shape{"RG2_RF1", {2, 2}, 1}, Shape{"RG1_RF3", {3}, 3}),
                         [](const auto& info) { return std::string(info.param.name); });

// A failed node rejoins (plan rejoin, J = {r1}): while its shards are copied back
// into it (the backfill throttled so the copy is under way during the reads),
// no read is answered by r1 and every read returns the acknowledged version.
// Before the fix, r1 — an owner all along, wiped by prepare and partly copied —
// answered the reads of its shards: 776 of the 2,000 reads, and 157 of the 1,500
// live documents read back as not found.
TEST(RejoinReads, ReadsDuringARejoinsCopyReturnTheAcknowledgedVersion) {
  constexpr int kKeys = 2000;
  constexpr int kDeleted = 500;  // doc:0..doc:499 deleted while r1 is failed
  constexpr uint32_t kShards = 8;
  TempDir tmp("reads-rejoin");
  FleetOptions fo;
  fo.group_sizes = {2, 2};
  fo.indexes = {{"products", kShards, 1}};
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  WriterStats written;
  auto loaded = WriteEveryKey(f, kKeys, /*deletes=*/false, f.worker_addresses(), &written);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(MarkNodeFailed(f, "r1").ok());
  ASSERT_TRUE(f.WaitForWorkers(f.worker_count()).ok());
  auto deleted = WriteEveryKey(f, kDeleted, /*deletes=*/true, f.worker_addresses(), &written);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  const std::map<std::string, KeyRecord> expected = Merge(*loaded, *deleted);

  pb::CreatePlanRequest req;
  req.set_kind(pb::PLAN_REJOIN);
  req.set_node_id("r1");
  req.set_throttle_docs_per_s(40);  // ~250 documents per shard: several seconds per copy
  auto plan = f.CreatePlan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto copying = f.WaitForMoveState(plan->id(), pb::MOVE_COPYING);
  ASSERT_TRUE(copying.ok()) << copying.status();

  ReadBackOptions ro;
  ro.worker_addresses = f.worker_addresses();
  ReadBackReport during = ReadBack(expected, ro);
  // The reads overlapped the copy: a move of the plan is still copying after them.
  auto after = f.GetPlan(plan->id());
  ASSERT_TRUE(after.ok()) << after.status();
  bool still_copying = false;
  for (const auto& m : after->plan().moves()) still_copying |= m.state() == pb::MOVE_COPYING;
  ASSERT_TRUE(still_copying) << DescribePlan(after->plan());
  EXPECT_EQ(during.keys_read, static_cast<uint64_t>(kKeys));
  EXPECT_TRUE(during.ok()) << during.Summary();
  EXPECT_EQ(during.answered_by["r1"], 0u) << "the rejoining node answered a read";

  auto done = f.WaitForPlanEnd(plan->id(), absl::Seconds(120));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), pb::PLAN_DONE) << DescribePlan(*done);
  ReadBackReport end = ReadBack(expected, ro);
  EXPECT_TRUE(end.ok()) << end.Summary();
  auto check = CheckPromise(expected, f.CheckOptionsFor());
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_TRUE(check->ok()) << check->Summary();
  RecordChaosResult("16.3",
                    absl::StrCat("rejoin of r1 (", kDeleted,
                                 " deletes acked while failed), read during its copy"),
                    *check, written, static_cast<int64_t>(during.wrong() + end.wrong()));
}

// A node that missed acknowledged deletes (its proxy cut while they were
// written) answers again while its recovery passes are still pending (they
// cannot finish: a source of theirs is cut; with the default task_retries the
// coordinator keeps retrying them, issue 16 item 2). Reads skip it through the writing worker (its
// own reported misses) and through the other worker (the coordinator's exclusion list). Before the
// fix r0, first in group order, answered every read: 1,000 of 1,000 deleted documents read back as
// found through each worker.
TEST(PendingRecoveryReads, ANodeWithAPendingRecoveryPassIsNotReadFrom) {
  constexpr int kKeys = 1000;
  constexpr uint32_t kShards = 8;
  TempDir tmp("reads-pending");
  FleetOptions fo;
  fo.group_sizes = {1, 1, 1};
  fo.indexes = {{"products", kShards, 1}};
  fo.proxied_nodes = {"r0", "r2"};
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  WriterStats written;
  auto loaded = WriteEveryKey(f, kKeys, /*deletes=*/false, f.worker_addresses(), &written);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  f.node("r0").proxy->Cut();
  auto deleted = WriteEveryKey(f, kKeys, /*deletes=*/true, {f.worker_address(0)}, &written);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  // The passes that would repair r0 read r2 too: cut it before r0 answers again.
  f.node("r2").proxy->Cut();
  f.node("r0").proxy->Pass();
  uint64_t pending = 0;
  for (int i = 0; i < 200 && pending == 0; ++i) {
    auto st = f.Status();
    ASSERT_TRUE(st.ok()) << st.status();
    pending = st->pending_recovery_passes();
    if (pending == 0) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GT(pending, 0u) << "no recovery pass was scheduled for r0";
  ASSERT_GT(LiveDocsOn(f, "r0", kShards), 0u) << "r0 does not hold the deleted documents";

  int64_t stale_reads = 0;
  for (int w = 0; w < f.worker_count(); ++w) {
    ReadBackOptions ro;
    ro.worker_addresses = {f.worker_address(w)};
    ReadBackReport r = ReadBack(*deleted, ro);
    stale_reads += static_cast<int64_t>(r.wrong());
    EXPECT_EQ(r.keys_read, static_cast<uint64_t>(kKeys));
    EXPECT_TRUE(r.ok()) << "worker " << w << ": " << r.Summary();
    EXPECT_EQ(r.answered_by["r0"], 0u) << "worker " << w << " read from r0";
  }
  auto st = f.Status();
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_GT(st->pending_recovery_passes(), 0u) << "the passes finished during the reads";

  // Once r2 answers, the passes finish and r0 holds the tombstones.
  f.node("r2").proxy->Pass();
  auto check = CheckPromise(*deleted, f.CheckOptionsFor());
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_TRUE(check->ok()) << check->Summary();
  ReadBackOptions ro;
  ro.worker_addresses = f.worker_addresses();
  ReadBackReport end = ReadBack(*deleted, ro);
  EXPECT_TRUE(end.ok()) << end.Summary();
  stale_reads += static_cast<int64_t>(end.wrong());
  RecordChaosResult(
      "16.3",
      absl::StrCat("r0 cut while ", kKeys, " deletes acked, read with its recovery passes pending"),
      *check, written, stale_reads);
}

}  // namespace
}  // namespace miroir::testing
