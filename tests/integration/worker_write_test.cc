// The worker's write path end to end: real miroir-coordinator, real
// miroir-worker processes and redis-server nodes on loopback (DESIGN §4).
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>

#include "common/routing.h"
#include "harness/fleet.h"
#include "harness/temp_dir.h"
#include "worker/stores/redis_store.h"

namespace miroir::testing {
namespace {

namespace pb = miroir::v1;

constexpr uint32_t kShards = 8;

std::unique_ptr<Fleet> StartFleet(const TempDir& tmp, std::vector<int> groups, uint32_t rf,
                                  int workers, std::vector<int64_t> offsets = {}) {
  FleetOptions o;
  o.group_sizes = std::move(groups);
  o.indexes = {IndexSpec{"products", kShards, rf}};
  o.workers = workers;
  o.worker_clock_offsets_ms = std::move(offsets);
  auto f = Fleet::Start(tmp.path(), o);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? std::move(*f) : nullptr;
}

pb::WriteItem Put(const std::string& pk, const std::string& body, uint64_t after = 0,
                  const std::string& index = "products") {
  pb::WriteItem it;
  it.mutable_put()->set_index(index);
  it.mutable_put()->set_pk(pk);
  it.mutable_put()->set_body(body);
  it.set_after_version(after);
  return it;
}

pb::WriteItem Del(const std::string& pk, uint64_t after) {
  pb::WriteItem it;
  it.mutable_delete_()->set_index("products");
  it.mutable_delete_()->set_pk(pk);
  it.set_after_version(after);
  return it;
}

// Sends one batch on a fresh stream and returns its acks (bounded by a client
// deadline far above the worker's write deadline).
absl::StatusOr<pb::WriteAcks> WriteBatch(pb::DataPlane::Stub& stub,
                                         const std::vector<pb::WriteItem>& items) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub.Write(&ctx);
  pb::WriteBatch b;
  b.set_batch_id(7);
  for (const auto& i : items) *b.add_items() = i;
  if (!stream->Write(b)) return absl::UnavailableError("stream write failed");
  stream->WritesDone();
  pb::WriteAcks acks;
  if (!stream->Read(&acks)) {
    grpc::Status st = stream->Finish();
    return absl::UnavailableError("no acks: " + st.error_message());
  }
  stream->Finish();
  return acks;
}

// Owners of `pk` in every group, from the coordinator's routing table.
std::vector<std::string> OwnersOf(Fleet& f, const std::string& pk) {
  auto idx = f.Indexes();
  EXPECT_TRUE(idx.ok()) << idx.status();
  std::vector<std::string> out;
  if (!idx.ok()) return out;
  const auto& resp = idx->at("products");
  for (const auto& g : resp.routes()) {
    if (g.role() != pb::GENERATION_LIVE) continue;
    const auto& r = g.routes(static_cast<int>(ShardForKey(pk, g.shards())));
    for (const auto& grp : r.owners())
      out.insert(out.end(), grp.nodes().begin(), grp.nodes().end());
  }
  return out;
}

absl::StatusOr<StoredDoc> ReadNode(Fleet& f, const std::string& node, const std::string& pk) {
  auto idx = f.Indexes();
  if (!idx.ok()) return idx.status();
  uint64_t gen = idx->at("products").index().live_generation();
  auto store = RedisStore::Create(f.redis(node).address(), StoreOptions{});
  if (!store.ok()) return store.status();
  return (*store)->Get(ShardKey{"products", gen, ShardForKey(pk, kShards)}, kAnyEpoch, pk);
}

TEST(WorkerWrite, Rg2Rf2WritesReachEveryOwnerWithOneVersion) {
  TempDir tmp("worker-rg2rf2");
  auto f = StartFleet(tmp, {2, 2}, 2, 1);
  ASSERT_NE(f, nullptr);
  std::vector<pb::WriteItem> items;
  for (int i = 0; i < 20; ++i)
    items.push_back(Put("k" + std::to_string(i), R"({"i":)" + std::to_string(i) + "}"));
  auto acks = WriteBatch(f->dataplane(0), items);
  ASSERT_TRUE(acks.ok()) << acks.status();
  ASSERT_EQ(acks->acks_size(), 20);
  for (int i = 0; i < 20; ++i) {
    const auto& a = acks->acks(i);
    ASSERT_EQ(a.code(), 0u) << a.error();
    EXPECT_TRUE(a.degraded_groups().empty());
    const std::string pk = "k" + std::to_string(i);
    auto owners = OwnersOf(*f, pk);
    ASSERT_EQ(owners.size(), 4u);
    for (const auto& n : owners) {
      auto d = ReadNode(*f, n, pk);
      ASSERT_TRUE(d.ok()) << n << " " << pk << ": " << d.status();
      EXPECT_EQ(d->version.hlc, a.version()) << n;
      EXPECT_EQ(d->version.writer, a.writer()) << n;
      EXPECT_EQ(d->body, items[i].put().body());
    }
  }
  // And the promise holds under a mixed load with deletes.
  WriterOptions wo = f->WriterOptionsFor();
  wo.keys = 100;
  wo.max_ops = 600;
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Run().ok());
  EXPECT_GT(writer.stats().acked(), 0u);
  auto report = CheckPromise(writer.records(), f->CheckOptionsFor());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

TEST(WorkerWrite, SkewedClocksNeverLetAnOlderWriteWin) {
  TempDir tmp("worker-skew");
  // Worker 1's clock is ten minutes behind worker 0's.
  auto f = StartFleet(tmp, {1, 1}, 1, 2, {0, -600'000});
  ASSERT_NE(f, nullptr);
  uint64_t token = 0;
  std::string last_body;
  for (int i = 0; i < 12; ++i) {
    last_body = R"({"step":)" + std::to_string(i) + "}";
    auto acks = WriteBatch(f->dataplane(i % 2), {Put("hot", last_body, token)});
    ASSERT_TRUE(acks.ok()) << acks.status();
    ASSERT_EQ(acks->acks(0).code(), 0u) << acks->acks(0).error();
    EXPECT_GT(acks->acks(0).version(), token) << "step " << i;
    token = acks->acks(0).version();
    // Read-your-write through the other worker.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    pb::GetRequest req;
    req.set_index("products");
    req.set_pk("hot");
    req.set_after_version(token);
    pb::GetResponse resp;
    grpc::Status st = f->dataplane((i + 1) % 2).Get(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(resp.found());
    EXPECT_EQ(resp.document().body(), last_body);
  }
  // A delete through the slow worker still beats every earlier put.
  auto acks = WriteBatch(f->dataplane(1), {Del("hot", token)});
  ASSERT_TRUE(acks.ok());
  ASSERT_EQ(acks->acks(0).code(), 0u) << acks->acks(0).error();
  for (const auto& n : OwnersOf(*f, "hot")) {
    auto d = ReadNode(*f, n, "hot");
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(d->tombstone) << n;
    EXPECT_EQ(d->version.hlc, acks->acks(0).version());
  }
  // Many keys written through both workers, tokens passed: the promise holds.
  WriterOptions wo = f->WriterOptionsFor();
  wo.keys = 60;
  wo.max_ops = 500;
  wo.streams = 2;
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Run().ok());
  auto report = CheckPromise(writer.records(), f->CheckOptionsFor());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
}

TEST(WorkerWrite, NodeDownDegradesThenFailsByQuorumWithoutHanging) {
  TempDir tmp("worker-down");
  auto f = StartFleet(tmp, {1, 1}, 1, 1);
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->redis("r1").Kill().ok());
  auto acks = WriteBatch(f->dataplane(0), {Put("a", "{}"), Put("b", "{}")});
  ASSERT_TRUE(acks.ok()) << acks.status();
  for (const auto& a : acks->acks()) {
    ASSERT_EQ(a.code(), 0u) << a.error();
    EXPECT_THAT(a.degraded_groups(), ::testing::ElementsAre("g1"));
  }
  ASSERT_TRUE(f->redis("r0").Kill().ok());
  acks = WriteBatch(f->dataplane(0), {Put("c", "{}")});
  ASSERT_TRUE(acks.ok()) << acks.status() << " (the worker must answer, not hang)";
  EXPECT_EQ(acks->acks(0).code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
}

TEST(WorkerWrite, FencedNodeRefusesAStaleEpoch) {
  TempDir tmp("worker-fence");
  auto f = StartFleet(tmp, {1}, 1, 1);
  ASSERT_NE(f, nullptr);
  auto idx = f->Indexes();
  ASSERT_TRUE(idx.ok());
  const uint64_t epoch = idx->at("products").epoch();
  const uint64_t gen = idx->at("products").index().live_generation();
  auto store = RedisStore::Create(f->redis("r0").address(), StoreOptions{});
  ASSERT_TRUE(store.ok());
  const ShardKey key{"products", gen, ShardForKey("fenced-key", kShards)};
  ASSERT_TRUE((*store)->SetFence(key, epoch + 1000).ok());
  auto acks = WriteBatch(f->dataplane(0), {Put("fenced-key", "{}"), Put("other", "{}")});
  ASSERT_TRUE(acks.ok()) << acks.status();
  if (ShardForKey("other", kShards) != key.shard) {
    EXPECT_EQ(acks->acks(1).code(), 0u) << acks->acks(1).error();
  }
  EXPECT_EQ(acks->acks(0).code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_EQ((*store)->Get(key, kAnyEpoch, "fenced-key").status().code(),
            absl::StatusCode::kNotFound);
  auto direct = (*store)->Apply(key, epoch, {Mutation{"x", Version{1, 1}, false, "{}", 0}});
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ((*direct)[0].outcome, ApplyOutcome::kFenced);
}

TEST(WorkerWrite, WithoutALeaseWritesAreRefusedUntilTheCoordinatorIsBack) {
  TempDir tmp("worker-lease");
  auto f = StartFleet(tmp, {1}, 1, 1);
  ASSERT_NE(f, nullptr);
  auto first = WriteBatch(f->dataplane(0), {Put("before", "{}")});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->acks(0).code(), 0u) << first->acks(0).error();
  auto idx = f->Indexes();
  ASSERT_TRUE(idx.ok()) << idx.status();
  const uint64_t gen = idx->at("products").index().live_generation();
  ASSERT_TRUE(f->KillCoordinator().ok());
  // The lease (2 s in the harness config) lapses: writes are refused, retryably.
  std::string refused_key;
  for (int i = 0; i < 100 && refused_key.empty(); ++i) {
    const std::string key = "during" + std::to_string(i);
    auto acks = WriteBatch(f->dataplane(0), {Put(key, "{}")});
    ASSERT_TRUE(acks.ok()) << acks.status();
    if (acks->acks(0).code() != 0) {
      EXPECT_EQ(acks->acks(0).code(), static_cast<uint32_t>(grpc::StatusCode::UNAVAILABLE));
      EXPECT_THAT(acks->acks(0).error(), ::testing::HasSubstr("lease"));
      refused_key = key;
    } else {
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  ASSERT_FALSE(refused_key.empty()) << "writes kept being accepted without a coordinator";
  auto store = RedisStore::Create(f->redis("r0").address(), StoreOptions{});
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)
                ->Get(ShardKey{"products", gen, ShardForKey(refused_key, kShards)}, kAnyEpoch,
                      refused_key)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(f->RestartCoordinator().ok());
  ASSERT_TRUE(f->WaitForWorkers(1).ok());
  bool accepted = false;
  for (int i = 0; i < 100 && !accepted; ++i) {
    auto acks = WriteBatch(f->dataplane(0), {Put("after" + std::to_string(i), "{}")});
    ASSERT_TRUE(acks.ok()) << acks.status();
    accepted = acks->acks(0).code() == 0;
    if (!accepted) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(accepted) << "the worker did not renew its lease after the coordinator came back";
}

TEST(WorkerWrite, BadInputFailsThatItemOnly) {
  TempDir tmp("worker-bad");
  auto f = StartFleet(tmp, {1}, 1, 1);
  ASSERT_NE(f, nullptr);
  auto acks =
      WriteBatch(f->dataplane(0),
                 {Put("good1", "{}"), Put("j", "{malformed"), Put("arr", "[1]"), Put("", "{}"),
                  Put(std::string(512, 'x'), "{}"), Put("res", R"({"_miroir_version":1})"),
                  Put("k", "{}", 0, "nosuch"), Put("good2", R"({"ok":true})")});
  ASSERT_TRUE(acks.ok()) << acks.status();
  const uint32_t inv = static_cast<uint32_t>(grpc::StatusCode::INVALID_ARGUMENT);
  std::vector<uint32_t> codes;
  for (const auto& a : acks->acks()) codes.push_back(a.code());
  EXPECT_THAT(codes,
              ::testing::ElementsAre(0u, inv, inv, inv, inv, inv,
                                     static_cast<uint32_t>(grpc::StatusCode::NOT_FOUND), 0u));
  EXPECT_THAT(acks->acks(1).error(), ::testing::StartsWith("body:"));
  EXPECT_THAT(acks->acks(3).error(), ::testing::StartsWith("pk:"));
  EXPECT_THAT(acks->acks(6).error(), ::testing::StartsWith("index:"));
  EXPECT_TRUE(ReadNode(*f, "r0", "good1").ok());
  EXPECT_TRUE(ReadNode(*f, "r0", "good2").ok());
  EXPECT_EQ(ReadNode(*f, "r0", "j").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace miroir::testing
