// CoordinatorSession against an in-process WorkerControl server that plays the
// coordinator's side of docs/task-protocol.md over real gRPC on loopback.
#include "worker/coordinator_session.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <deque>

#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "tests/worker/view_builder.h"
#include "worker/view_change.h"

namespace miroir {
namespace {

// The coordinator side: records what the worker sends, sends what the test queues.
class ScriptedCoordinator final : public v1::WorkerControl::Service {
 public:
  grpc::Status Session(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>* stream) override {
    {
      absl::MutexLock l(&mu_);
      ++sessions_;
      outbox_.clear();
      end_stream_ = false;
    }
    std::thread reader([&] {
      v1::WorkerMessage m;
      while (stream->Read(&m)) {
        absl::MutexLock l(&mu_);
        received_.push_back(m);
        if (m.has_heartbeat() && answer_heartbeats_) {
          v1::CoordinatorMessage a;
          a.mutable_heartbeat_ack()->set_lease_ttl_ms(ttl_ms_);
          outbox_.push_back(a);
        }
        if (m.has_register_()) {
          v1::CoordinatorMessage a;
          a.mutable_register_ack()->set_lease_ttl_ms(ttl_ms_);
          outbox_.push_back(a);
          if (view_) {
            v1::CoordinatorMessage v;
            *v.mutable_view() = *view_;
            outbox_.push_back(v);
          }
        }
      }
      absl::MutexLock l(&mu_);
      end_stream_ = true;
    });
    while (true) {
      v1::CoordinatorMessage out;
      {
        absl::MutexLock l(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !outbox_.empty() || end_stream_;
        };
        mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(50));
        if (end_stream_) break;
        if (outbox_.empty()) continue;
        out = outbox_.front();
        outbox_.pop_front();
      }
      stream->Write(out);
    }
    ctx->TryCancel();
    reader.join();
    return grpc::Status::OK;
  }
  grpc::Status GetView(grpc::ServerContext*, const v1::GetViewRequest*,
                       v1::ClusterView* out) override {
    absl::MutexLock l(&mu_);
    if (view_) *out = *view_;
    return grpc::Status::OK;
  }

  void Push(const v1::ClusterView& v) {
    absl::MutexLock l(&mu_);
    view_ = v;
    v1::CoordinatorMessage m;
    *m.mutable_view() = v;
    outbox_.push_back(m);
  }
  void Send(const v1::CoordinatorMessage& m) {
    absl::MutexLock l(&mu_);
    outbox_.push_back(m);
  }
  void EndStream() {
    absl::MutexLock l(&mu_);
    end_stream_ = true;
  }
  // Waits (bounded) until `pred` holds over what was received.
  bool WaitFor(std::function<bool(const std::vector<v1::WorkerMessage>&)> pred,
               absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time until = absl::Now() + timeout;
    while (absl::Now() < until) {
      {
        absl::MutexLock l(&mu_);
        if (pred(received_)) return true;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
  void set_answer_heartbeats(bool b) {
    absl::MutexLock l(&mu_);
    answer_heartbeats_ = b;
  }
  int sessions() {
    absl::MutexLock l(&mu_);
    return sessions_;
  }

 private:
  absl::Mutex mu_;
  std::deque<v1::CoordinatorMessage> outbox_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::WorkerMessage> received_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::ClusterView> view_ ABSL_GUARDED_BY(mu_);
  bool answer_heartbeats_ ABSL_GUARDED_BY(mu_) = true;
  bool end_stream_ ABSL_GUARDED_BY(mu_) = false;
  int sessions_ ABSL_GUARDED_BY(mu_) = 0;
  const uint64_t ttl_ms_ = 600;
};

bool HasAck(const std::vector<v1::WorkerMessage>& ms, uint64_t epoch) {
  for (const auto& m : ms) {
    if (m.has_routing_ack() && m.routing_ack().epoch() == epoch) return true;
  }
  return false;
}

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = StartGrpcServer("127.0.0.1:0", {&coord_});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    SessionOptions o;
    o.coordinator = "127.0.0.1:" + std::to_string(server_.port);
    o.worker_id = "w-test";
    o.address = "127.0.0.1:9";
    o.node_report_interval = absl::Seconds(60);
    session_ = std::make_unique<CoordinatorSession>(o, &router_, &inflight_, &stores_);
  }
  void TearDown() override {
    session_->Stop();
    server_.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  v1::ClusterView View(uint64_t epoch) {
    return testing::MakeView(epoch, {{"r0", "127.0.0.1:1"}}, "products", 4, 1, {{"g0", {"r0"}}});
  }

  // Pushes `view`: once applied, its ack is not sent while the in-flight batch
  // `token` is out, and is sent once it ends.
  void ExpectAckHeldUntil(const v1::ClusterView& view, uint64_t token) {
    const uint64_t e = view.epoch();
    coord_.Push(view);
    ASSERT_TRUE(coord_.WaitFor([this, e](const auto&) { return router_.epoch() == e; }));
    EXPECT_FALSE(
        coord_.WaitFor([e](const auto& ms) { return HasAck(ms, e); }, absl::Milliseconds(300)));
    inflight_.End(token);
    EXPECT_TRUE(coord_.WaitFor([e](const auto& ms) { return HasAck(ms, e); }));
  }

  ScriptedCoordinator coord_;
  RunningServer server_;
  Router router_;
  InflightTracker inflight_;
  NodeStores stores_{StoreOptions{}};
  std::unique_ptr<CoordinatorSession> session_;
};

TEST_F(SessionTest, RegistersAppliesViewAcksItAndKeepsLeaseWithHeartbeats) {
  coord_.Push(View(3));
  session_->Start();
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) {
    return !ms.empty() && ms[0].has_register_() && ms[0].register_().worker_id() == "w-test" &&
           ms[0].register_().address() == "127.0.0.1:9";
  }));
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) { return HasAck(ms, 3); }));
  EXPECT_EQ(router_.epoch(), 3u);
  // Several heartbeats (ttl 600 ms -> every 200 ms) keep the lease valid.
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) {
    int n = 0;
    for (const auto& m : ms) n += m.has_heartbeat() ? 1 : 0;
    return n >= 4;
  }));
  EXPECT_TRUE(session_->LeaseValid());
}

TEST_F(SessionTest, LeaseLapsesWhenHeartbeatsAreNotAcknowledged) {
  coord_.Push(View(1));
  session_->Start();
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) { return HasAck(ms, 1); }));
  coord_.set_answer_heartbeats(false);
  bool lapsed = false;
  for (int i = 0; i < 300 && !lapsed; ++i) {
    lapsed = !session_->LeaseValid();
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(lapsed);
  coord_.set_answer_heartbeats(true);
  bool renewed = false;
  for (int i = 0; i < 300 && !renewed; ++i) {
    renewed = session_->LeaseValid();
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(renewed);
}

TEST_F(SessionTest, RoutingAckWaitsForOlderInflightWritesToTheShardsItChanges) {
  coord_.Push(View(1));
  session_->Start();
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) { return HasAck(ms, 1); }));
  // Writes routed at epoch 1 are still out: one to shard 0, one to shard 1.
  const uint64_t to_shard0 = inflight_.Begin(1, 1, {ShardKeyName("products", 1, 0)});
  const uint64_t to_shard1 = inflight_.Begin(1, 1, {ShardKeyName("products", 1, 1)});
  // Epoch 2 pauses shard 1 only: its ack waits for the write to shard 1, not for
  // the one to shard 0.
  v1::ClusterView v2 = View(2);
  v2.mutable_generations(0)->mutable_routes(1)->set_state(v1::SHARD_PAUSED);
  ExpectAckHeldUntil(v2, to_shard1);
  // Epoch 3 adds a node (more than routes change): its ack waits for every older write.
  v1::ClusterView v3 = v2;
  v3.set_epoch(3);
  auto* n = v3.add_nodes();
  n->set_id("r1");
  n->set_address("127.0.0.1:2");
  n->set_store("redis");
  ExpectAckHeldUntil(v3, to_shard0);
}

TEST_F(SessionTest, OlderViewIsIgnoredAndMissesAreBatched) {
  coord_.Push(View(5));
  session_->Start();
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) { return HasAck(ms, 5); }));
  coord_.Push(View(4));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(router_.epoch(), 5u);
  for (int i = 0; i < 3; ++i) session_->ReportMiss("r0", "products", 1, 2);
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) {
    for (const auto& m : ms) {
      if (m.has_misses() && m.misses().misses_size() == 1 && m.misses().misses(0).count() == 3 &&
          m.misses().misses(0).node() == "r0" && m.misses().misses(0).shard() == 2) {
        return true;
      }
    }
    return false;
  }));
}

// The highest miss-report seq received for (node, shard) on or after message
// `from` (0: none).
uint64_t ReportedIn(const std::vector<v1::WorkerMessage>& ms, const std::string& node,
                    uint32_t shard, size_t from = 0) {
  uint64_t seq = 0;
  for (size_t i = from; i < ms.size(); ++i) {
    if (!ms[i].has_misses()) continue;
    for (const auto& m : ms[i].misses().misses()) {
      if (m.node() == node && m.shard() == shard) seq = std::max(seq, ms[i].misses().seq());
    }
  }
  return seq;
}

v1::CoordinatorMessage ExclusionList(uint64_t version, uint64_t through) {
  v1::CoordinatorMessage m;
  m.mutable_read_exclusions()->set_version(version);
  m.mutable_read_exclusions()->set_misses_through(through);
  return m;
}

TEST_F(SessionTest, AReportedMissIsExcludedFromReadsUntilTheCoordinatorConfirmsIt) {
  ReadExclusions exclusions;
  session_->set_read_exclusions(&exclusions);
  coord_.Push(View(1));
  session_->Start();
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) { return HasAck(ms, 1); }));
  session_->ReportMiss("r0", "products", 1, 2);
  EXPECT_TRUE(exclusions.Excluded("r0", 1, 2));  // at once, before any report
  uint64_t seq = 0;
  ASSERT_TRUE(coord_.WaitFor([&](const auto& ms) { return (seq = ReportedIn(ms, "r0", 2)) > 0; }));
  coord_.Send(ExclusionList(1, seq - 1));  // an earlier report: still excluded
  coord_.Send(ExclusionList(2, 0));
  ASSERT_TRUE(coord_.WaitFor([&](const auto&) { return exclusions.version() == 2; }));
  EXPECT_TRUE(exclusions.Excluded("r0", 1, 2));
  coord_.Send(ExclusionList(3, seq));
  ASSERT_TRUE(coord_.WaitFor([&](const auto&) { return exclusions.own() == 0; }));
  EXPECT_FALSE(exclusions.Excluded("r0", 1, 2));
}

TEST_F(SessionTest, AnUnconfirmedMissIsReportedAgainOnTheNextSession) {
  ReadExclusions exclusions;
  session_->set_read_exclusions(&exclusions);
  coord_.Push(View(1));
  session_->Start();
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) { return HasAck(ms, 1); }));
  session_->ReportMiss("r0", "products", 1, 3);
  uint64_t first = 0;
  size_t seen = 0;
  ASSERT_TRUE(coord_.WaitFor([&](const auto& ms) {
    seen = ms.size();
    return (first = ReportedIn(ms, "r0", 3)) > 0;
  }));
  coord_.EndStream();  // never confirmed
  for (int i = 0; i < 500 && coord_.sessions() < 2; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_GE(coord_.sessions(), 2);
  uint64_t again = 0;
  ASSERT_TRUE(coord_.WaitFor(
      [&](const auto& ms) { return (again = ReportedIn(ms, "r0", 3, seen)) > first; }));
  EXPECT_TRUE(exclusions.Excluded("r0", 1, 3));
  coord_.Send(ExclusionList(1, again));
  ASSERT_TRUE(coord_.WaitFor([&](const auto&) { return exclusions.own() == 0; }));
}

TEST_F(SessionTest, ReconnectsAndReRegistersWhenTheStreamEnds) {
  coord_.Push(View(1));
  session_->Start();
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) { return HasAck(ms, 1); }));
  coord_.EndStream();
  for (int i = 0; i < 500 && coord_.sessions() < 2; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_GE(coord_.sessions(), 2);
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) {
    int regs = 0, acks = 0;
    for (const auto& m : ms) {
      regs += m.has_register_() ? 1 : 0;
      acks += (m.has_routing_ack() && m.routing_ack().epoch() == 1) ? 1 : 0;
    }
    return regs >= 2 && acks >= 2;  // the re-sent current view is acked on the new stream
  }));
}

}  // namespace
}  // namespace miroir
