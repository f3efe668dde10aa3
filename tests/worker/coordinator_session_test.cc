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
        if (m.has_register_() && answer_register_) {
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

  grpc::Status ReportMisses(grpc::ServerContext*, const v1::MissReport* req,
                            v1::MissReportAck* ack) override {
    absl::MutexLock l(&mu_);
    if (refuse_misses_) {
      ++refused_reports_;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no leader");
    }
    reports_.push_back(*req);
    ack->set_scheduled(static_cast<uint32_t>(req->misses_size()));
    // As the coordinator does: the current list, confirming this report.
    *ack->mutable_read_exclusions() = exclusions_;
    ack->mutable_read_exclusions()->set_misses_through(req->seq());
    return grpc::Status::OK;
  }
  void set_refuse_misses(bool b) {
    absl::MutexLock l(&mu_);
    refuse_misses_ = b;
  }
  int refused_reports() {
    absl::MutexLock l(&mu_);
    return refused_reports_;
  }
  std::vector<v1::MissReport> reports() {
    absl::MutexLock l(&mu_);
    return reports_;
  }
  // Waits (bounded) until `pred` holds over the miss reports answered OK.
  bool WaitForReports(std::function<bool(const std::vector<v1::MissReport>&)> pred,
                      absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time until = absl::Now() + timeout;
    while (absl::Now() < until) {
      if (pred(reports())) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
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
  // false: a registration gets no answer at all (a SIGSTOPped coordinator).
  void set_answer_register(bool b) {
    absl::MutexLock l(&mu_);
    answer_register_ = b;
  }
  int sessions() {
    absl::MutexLock l(&mu_);
    return sessions_;
  }
  std::vector<v1::WorkerMessage> received() {
    absl::MutexLock l(&mu_);
    return received_;
  }

 private:
  absl::Mutex mu_;
  std::deque<v1::CoordinatorMessage> outbox_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::WorkerMessage> received_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::ClusterView> view_ ABSL_GUARDED_BY(mu_);
  bool answer_heartbeats_ ABSL_GUARDED_BY(mu_) = true;
  bool answer_register_ ABSL_GUARDED_BY(mu_) = true;
  bool refuse_misses_ ABSL_GUARDED_BY(mu_) = false;
  v1::ReadExclusions exclusions_ ABSL_GUARDED_BY(mu_);  // answered to miss reports
  int refused_reports_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::MissReport> reports_ ABSL_GUARDED_BY(mu_);
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
    o.miss_report_interval = absl::Milliseconds(100);
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
  ASSERT_TRUE(coord_.WaitForReports([](const auto& rs) {
    for (const auto& r : rs) {
      if (r.misses_size() == 1 && r.misses(0).count() == 3 && r.misses(0).node() == "r0" &&
          r.misses(0).shard() == 2 && r.worker_id() == "w-test" && !r.stopping()) {
        return true;
      }
    }
    return false;
  }));
}

// DESIGN §9a: misses wait while no coordinator answers and are reported when one
// does; Stop sends the last ones as the `stopping` report (a clean session end).
TEST_F(SessionTest, MissesAreKeptUntilACoordinatorAnswersAndStopReportsTheLast) {
  coord_.Push(View(1));
  coord_.set_refuse_misses(true);
  session_->Start();
  session_->ReportMiss("r0", "products", 1, 2);
  for (int i = 0; i < 500 && coord_.refused_reports() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GE(coord_.refused_reports(), 2);
  session_->ReportMiss("r0", "products", 1, 2);
  session_->ReportMiss("r1", "products", 1, 0);
  coord_.set_refuse_misses(false);
  ASSERT_TRUE(coord_.WaitForReports([](const auto& rs) {
    uint64_t r0 = 0, r1 = 0;
    for (const auto& r : rs) {
      for (const auto& m : r.misses()) (m.node() == "r0" ? r0 : r1) += m.count();
    }
    return r0 == 2 && r1 == 1;
  }));
  session_->ReportMiss("r1", "products", 1, 3);
  session_->Stop();
  auto rs = coord_.reports();
  ASSERT_FALSE(rs.empty());
  EXPECT_TRUE(rs.back().stopping());
  uint64_t r1_shard3 = 0;
  for (const auto& r : rs) {
    for (const auto& m : r.misses()) {
      if (m.node() == "r1" && m.shard() == 3) r1_shard3 += m.count();
    }
  }
  EXPECT_EQ(r1_shard3, 1u);
}

v1::CoordinatorMessage ExclusionList(uint64_t version, uint64_t through) {
  v1::CoordinatorMessage m;
  m.mutable_read_exclusions()->set_version(version);
  m.mutable_read_exclusions()->set_misses_through(through);
  return m;
}

// DESIGN §4 "Reads": a reported miss is excluded from reads at once, stays
// excluded while its report is refused (a list on the stream that confirms no
// report changes nothing), and ends once the ReportMisses answer confirms the
// report that carried it; a refused report goes out again under a later seq.
TEST_F(SessionTest, AReportedMissIsExcludedFromReadsUntilTheCoordinatorConfirmsIt) {
  ReadExclusions exclusions;
  session_->set_read_exclusions(&exclusions);
  coord_.Push(View(1));
  coord_.set_refuse_misses(true);
  session_->Start();
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) { return HasAck(ms, 1); }));
  session_->ReportMiss("r0", "products", 1, 2);
  EXPECT_TRUE(exclusions.Excluded("r0", 1, 2));  // at once, before any report
  for (int i = 0; i < 500 && coord_.refused_reports() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GE(coord_.refused_reports(), 2);
  coord_.Send(ExclusionList(2, 0));
  ASSERT_TRUE(coord_.WaitFor([&](const auto&) { return exclusions.version() == 2; }));
  EXPECT_TRUE(exclusions.Excluded("r0", 1, 2));
  EXPECT_EQ(exclusions.own(), 1u);
  coord_.set_refuse_misses(false);
  uint64_t seq = 0;
  ASSERT_TRUE(coord_.WaitForReports([&](const auto& rs) {
    for (const auto& r : rs) {
      for (const auto& m : r.misses()) {
        if (m.node() == "r0" && m.shard() == 2) seq = r.seq();
      }
    }
    return seq > 0;
  }));
  EXPECT_GT(seq, 2u);  // the refused reports took seqs 1 and 2
  ASSERT_TRUE(coord_.WaitFor([&](const auto&) { return exclusions.own() == 0; }));
  EXPECT_FALSE(exclusions.Excluded("r0", 1, 2));
  session_->Stop();  // before `exclusions` goes
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

// Two coordinators (etcd: one leads). The one followed goes silent — the TCP
// connection stays up but nothing is answered, as when it is SIGSTOPped — so
// the session leaves it for the other one within a heartbeat interval, and
// registers there before its lease lapses.
class TwoCoordinatorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) {
      auto s = StartGrpcServer("127.0.0.1:0", {&coords_[i]});
      ASSERT_TRUE(s.ok()) << s.status();
      servers_[i] = std::move(*s);
    }
  }
  void TearDown() override {
    if (session_) session_->Stop();
    for (auto& s : servers_) {
      s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    }
  }
  void StartSession() {
    SessionOptions o;
    o.coordinator = "127.0.0.1:" + std::to_string(servers_[0].port) +
                    ",127.0.0.1:" + std::to_string(servers_[1].port);
    o.worker_id = "w-test";
    o.address = "127.0.0.1:9";
    o.node_report_interval = absl::Seconds(60);
    session_ = std::make_unique<CoordinatorSession>(o, &router_, &inflight_, &stores_);
    session_->Start();
  }
  static bool Registered(const std::vector<v1::WorkerMessage>& ms) {
    for (const auto& m : ms) {
      if (m.has_register_()) return true;
    }
    return false;
  }

  ScriptedCoordinator coords_[2];
  RunningServer servers_[2];
  Router router_;
  InflightTracker inflight_;
  NodeStores stores_{StoreOptions{}};
  std::unique_ptr<CoordinatorSession> session_;
};

TEST_F(TwoCoordinatorsTest, LeavesACoordinatorThatStopsAnsweringHeartbeatsWithinTheLease) {
  const v1::ClusterView view =
      testing::MakeView(1, {{"r0", "127.0.0.1:1"}}, "products", 4, 1, {{"g0", {"r0"}}});
  coords_[0].Push(view);
  coords_[1].Push(view);
  StartSession();
  ASSERT_TRUE(coords_[0].WaitFor([](const auto& ms) { return HasAck(ms, 1); }));
  EXPECT_FALSE(Registered(coords_[1].received()));
  // Coordinator 0 freezes: no heartbeat and no registration is answered again.
  coords_[0].set_answer_heartbeats(false);
  coords_[0].set_answer_register(false);
  // The lease (600 ms, heartbeats every 200 ms) stays valid throughout: the
  // session is registered with coordinator 1 before it could lapse.
  bool lapsed = false;
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (absl::Now() < until && !Registered(coords_[1].received())) {
    lapsed = lapsed || !session_->LeaseValid();
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_TRUE(Registered(coords_[1].received())) << "the session stayed on the silent coordinator";
  ASSERT_TRUE(coords_[1].WaitFor([](const auto& ms) { return HasAck(ms, 1); }));
  EXPECT_FALSE(lapsed);
  EXPECT_TRUE(session_->LeaseValid());
}

TEST_F(TwoCoordinatorsTest, ACoordinatorThatDoesNotAnswerTheRegistrationIsLeft) {
  coords_[0].set_answer_register(false);
  coords_[1].Push(
      testing::MakeView(2, {{"r0", "127.0.0.1:1"}}, "products", 4, 1, {{"g0", {"r0"}}}));
  StartSession();
  ASSERT_TRUE(coords_[1].WaitFor([](const auto& ms) { return HasAck(ms, 2); }));
  EXPECT_TRUE(session_->LeaseValid());
  EXPECT_EQ(router_.epoch(), 2u);
}

// One coordinator: a silent one is not left (there is no other); the lease
// lapses as before and the same stream serves again once it answers.
TEST_F(SessionTest, ASilentOnlyCoordinatorIsNotLeft) {
  coord_.Push(View(1));
  session_->Start();
  ASSERT_TRUE(coord_.WaitFor([](const auto& ms) { return HasAck(ms, 1); }));
  coord_.set_answer_heartbeats(false);
  absl::SleepFor(absl::Seconds(1));  // > one heartbeat interval (200 ms) and the lease (600 ms)
  EXPECT_EQ(coord_.sessions(), 1);
  EXPECT_FALSE(session_->LeaseValid());
  coord_.set_answer_heartbeats(true);
}

}  // namespace
}  // namespace miroir
