// DataPlaneService over real gRPC on loopback with a real redis-server: many
// batches pipelined on one stream are answered in order; Get honours
// after_version; ReadShard pages a node's shard with its fence and seq.
#include "worker/dataplane_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "common/grpc_server.h"
#include "common/routing.h"
#include "harness/redis_node.h"
#include "harness/temp_dir.h"
#include "tests/worker/view_builder.h"
#include "worker/stores/redis_store.h"

namespace miroir {
namespace {

class AlwaysLeased : public CoordinatorLink {
 public:
  bool LeaseValid() const override { return true; }
  void RefreshView(uint64_t) override {}
  void ReportMiss(const std::string&, const std::string&, uint64_t, uint32_t) override {}
};

class DataPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto n = testing::RedisNode::Start(dir_.Subdir("r0"));
    ASSERT_TRUE(n.ok()) << n.status();
    node_ = std::move(*n);
    router_.Apply(
        testing::MakeView(1, {{"r0", node_->address()}}, "products", kShards, 1, {{"g0", {"r0"}}}));
    v1::ClusterView v = router_.Current()->view();
    v.set_epoch(2);
    (*v.mutable_aliases())["shop"] = "products";
    router_.Apply(v);
    auto s = StartGrpcServer("127.0.0.1:0", {&service_});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    stub_ = v1::DataPlane::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(server_.port),
                                                       grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }

  static constexpr uint32_t kShards = 4;
  testing::TempDir dir_{"dataplane"};
  std::unique_ptr<testing::RedisNode> node_;
  Router router_;
  NodeStores stores_{StoreOptions{}};
  ManualClock clock_;
  HybridClock hlc_{&clock_, 9};
  InflightTracker inflight_;  // outlives the pool
  ThreadPool pool_{2};
  AlwaysLeased link_;
  WritePath path_{&router_, &stores_,   &hlc_,  &clock_,
                  &pool_,   &inflight_, &link_, WritePathOptions{}};
  DataPlaneService service_{&path_,
                            &router_,
                            &stores_,
                            &link_,
                            /*exclusions=*/nullptr,
                            /*max_batches_in_flight=*/2};
  RunningServer server_;
  std::unique_ptr<v1::DataPlane::Stub> stub_;
};

TEST_F(DataPlaneTest, PipelinedBatchesAreAnsweredInOrderOnePerBatch) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->Write(&ctx);
  constexpr int kBatches = 40;
  std::thread sender([&] {
    for (int b = 0; b < kBatches; ++b) {
      v1::WriteBatch batch;
      batch.set_batch_id(1000 + b);
      for (int i = 0; i < 5; ++i) {
        auto* it = batch.add_items();
        it->mutable_put()->set_index("shop");  // by alias
        it->mutable_put()->set_pk("k" + std::to_string(b * 5 + i));
        it->mutable_put()->set_body("{}");
      }
      if (!stream->Write(batch)) break;
    }
    stream->WritesDone();
  });
  v1::WriteAcks acks;
  int got = 0;
  while (stream->Read(&acks)) {
    EXPECT_EQ(acks.batch_id(), static_cast<uint64_t>(1000 + got));
    ASSERT_EQ(acks.acks_size(), 5);
    for (const auto& a : acks.acks()) EXPECT_EQ(a.code(), 0u) << a.error();
    ++got;
  }
  sender.join();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(got, kBatches);
}

TEST_F(DataPlaneTest, GetReturnsOwnWriteAndRefusesATokenNoOwnerHas) {
  v1::WriteItem it;
  it.mutable_put()->set_index("products");
  it.mutable_put()->set_pk("a");
  it.mutable_put()->set_body(R"({"x":1})");
  auto acks = path_.Write({&it});
  ASSERT_EQ(acks[0].code(), 0u);
  {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_index("shop");
    req.set_pk("a");
    req.set_after_version(acks[0].version());
    v1::GetResponse resp;
    ASSERT_TRUE(stub_->Get(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.found());
    EXPECT_EQ(resp.document().body(), R"({"x":1})");
    EXPECT_EQ(resp.node(), "r0");
  }
  {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_index("products");
    req.set_pk("a");
    req.set_after_version(acks[0].version() + 1);
    v1::GetResponse resp;
    grpc::Status st = stub_->Get(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  }
  {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_index("nosuch");
    req.set_pk("a");
    v1::GetResponse resp;
    EXPECT_EQ(stub_->Get(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_index("products");
    v1::GetResponse resp;
    grpc::Status st = stub_->Get(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(st.error_message().rfind("pk:", 0), 0u);
  }
}

TEST_F(DataPlaneTest, GetTreatsExpiredDocumentAsAbsent) {
  v1::WriteItem it;
  it.mutable_put()->set_index("products");
  it.mutable_put()->set_pk("e");
  it.mutable_put()->set_body("{}");
  it.mutable_put()->set_expires_at_ms(1000);  // long past
  ASSERT_EQ(path_.Write({&it})[0].code(), 0u);
  grpc::ClientContext ctx;
  v1::GetRequest req;
  req.set_index("products");
  req.set_pk("e");
  v1::GetResponse resp;
  ASSERT_TRUE(stub_->Get(&ctx, req, &resp).ok());
  EXPECT_FALSE(resp.found());
  EXPECT_EQ(resp.document().expires_at_ms(), 1000);
}

// Expiry is decided on the injected clock, not the machine's: the manual clock
// reads 2023, so a document expiring a minute after it has long expired in real
// time and is still found until the clock passes its expiry.
TEST_F(DataPlaneTest, GetDecidesExpiryOnTheInjectedClock) {
  const int64_t expires = clock_.NowMs() + 60'000;
  ASSERT_LT(expires, absl::ToUnixMillis(absl::Now()));
  v1::WriteItem it;
  it.mutable_put()->set_index("products");
  it.mutable_put()->set_pk("ttl");
  it.mutable_put()->set_body("{}");
  it.mutable_put()->set_expires_at_ms(expires);
  ASSERT_EQ(path_.Write({&it})[0].code(), 0u);
  auto get = [&] {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_index("products");
    req.set_pk("ttl");
    v1::GetResponse resp;
    grpc::Status st = stub_->Get(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.document().expires_at_ms(), expires);
    return resp.found();
  };
  EXPECT_TRUE(get()) << "a minute before its expiry on the worker's clock";
  clock_.Advance(59'999);
  EXPECT_TRUE(get()) << "1 ms before its expiry";
  clock_.Advance(1);
  EXPECT_FALSE(get()) << "at its expiry";
}

TEST_F(DataPlaneTest, ReadShardPagesInKeyOrderWithFenceAndSeq) {
  std::vector<v1::WriteItem> items;
  for (int i = 0; i < 30; ++i) {
    v1::WriteItem it;
    it.mutable_put()->set_index("products");
    it.mutable_put()->set_pk("p" + std::to_string(i));
    it.mutable_put()->set_body("{}");
    items.push_back(it);
  }
  std::vector<const v1::WriteItem*> ptrs;
  for (auto& i : items) ptrs.push_back(&i);
  path_.Write(ptrs);
  uint32_t shard = ShardForKey("p0", kShards);
  auto store = RedisStore::Create(node_->address(), StoreOptions{});
  ASSERT_TRUE((*store)->SetFence(ShardKey{"products", 1, shard}, 7).ok());
  std::vector<std::string> seen;
  std::string after;
  uint64_t seq = 0;
  for (int page = 0; page < 100; ++page) {
    grpc::ClientContext ctx;
    v1::ReadShardRequest req;
    req.set_node("r0");
    req.set_index("products");
    req.set_shard(shard);
    req.set_after_pk(after);
    req.set_limit(3);
    v1::ReadShardResponse resp;
    grpc::Status st = stub_->ReadShard(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.fence(), 7u);
    EXPECT_FALSE(resp.incarnation().empty());
    seq = resp.change_seq();
    for (const auto& d : resp.documents()) seen.push_back(d.pk());
    if (resp.done()) break;
    after = resp.documents().rbegin()->pk();
  }
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seq, seen.size());
  size_t expected = 0;
  for (int i = 0; i < 30; ++i) expected += ShardForKey("p" + std::to_string(i), kShards) == shard;
  EXPECT_EQ(seen.size(), expected);
  grpc::ClientContext ctx;
  v1::ReadShardRequest bad;
  bad.set_node("r0");
  bad.set_index("products");
  bad.set_shard(kShards);
  v1::ReadShardResponse resp;
  EXPECT_EQ(stub_->ReadShard(&ctx, bad, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace miroir
