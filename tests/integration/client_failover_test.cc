// The C++ client library (client/) against a real fleet: a session's
// sequential operations on a key keep the promise of DESIGN §4 while the worker
// it uses is killed with a batch in flight and the session fails over.
//
// The session's first worker is reached through a TcpProxy, so the test can
// force the worst moment: the proxy delays traffic, the batch reaches the
// worker and is applied on the nodes (seen through the other worker), then the
// proxy cuts the connection (the acks it buffers are lost) and the worker is
// killed. The client never learns that round's outcome, retries it through
// the second worker (whose clock is 1.5 s behind) with raised after_version
// tokens, and later rounds go on there. The harness then checks every owner
// on the nodes against what the session was acknowledged.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "harness/fleet.h"
#include "harness/tcp_proxy.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"
#include "miroir/client.h"

namespace miroir::testing {
namespace {

using client::Mutation;
using client::WriteResult;

int PortOf(const std::string& address) {
  std::vector<std::string> parts = absl::StrSplit(address, ':');
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(parts.back(), &port)) << address;
  return port;
}

class SessionRecorder {
 public:
  explicit SessionRecorder(int keys) : keys_(keys) {}
  std::string Key(int k) const { return absl::StrCat("c:", k); }

  // One round: every key still in use gets a put (unique body) or a delete.
  std::vector<Mutation> Round(int round) {
    std::vector<Mutation> out;
    pending_.clear();
    for (int k = 0; k < keys_; ++k) {
      const std::string key = Key(k);
      if (records_[key].unknown) continue;
      const bool del = round > 0 && (round + k) % 5 == 0;
      std::string body = del ? "" : absl::StrCat("{\"key\":\"", key, "\",\"round\":", round, "}");
      out.push_back(del ? Mutation::Delete("products", key) : Mutation::Put("products", key, body));
      pending_.push_back({key, del, body});
    }
    return out;
  }
  // Records the round's results; returns how many were acknowledged.
  int Record(const std::vector<WriteResult>& results) {
    EXPECT_EQ(results.size(), pending_.size());
    int ok = 0;
    for (size_t i = 0; i < results.size() && i < pending_.size(); ++i) {
      KeyRecord& r = records_[pending_[i].key];
      if (results[i].status.ok()) {
        ++ok;
        r.acked = true;
        r.deleted = pending_[i].del;
        r.body = pending_[i].body;
        r.version = results[i].version;
        r.writer = results[i].writer;
        r.acked_ops += 1;
      } else {
        ADD_FAILURE() << pending_[i].key << ": " << results[i].status;
        r.unknown = true;
      }
    }
    return ok;
  }
  const std::map<std::string, KeyRecord>& records() const { return records_; }

 private:
  struct Pending {
    std::string key;
    bool del;
    std::string body;
  };
  const int keys_;
  std::vector<Pending> pending_;
  std::map<std::string, KeyRecord> records_;
};

TEST(ClientFailover, SequentialOpsKeepThePromiseWhileTheWorkerInUseIsKilled) {
  TempDir tmp("client");
  FleetOptions fo;
  fo.group_sizes = {2, 2};
  fo.indexes = {{"products", 8, 1}};
  fo.workers = 2;
  fo.worker_clock_offsets_ms = {0, -1500};
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  // Workers send their build version when they register; status shows it.
  auto status = f.Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_FALSE(status->coordinator_version().empty());
  ASSERT_EQ(status->workers_size(), 2);
  for (const auto& w : status->workers()) {
    EXPECT_EQ(w.version(), status->coordinator_version()) << w.id();
  }

  auto proxy = TcpProxy::Start(PortOf(f.worker_address(0)));
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  client::ClientOptions co;
  co.workers = {(*proxy)->address(), f.worker_address(1)};
  co.call_timeout = absl::Seconds(10);
  co.max_attempts = 8;
  co.max_batch_items = 8;
  co.max_batches_in_flight = 2;
  co.clock_skew_allowance = absl::Milliseconds(200);
  auto cl = client::Client::Create(co);
  ASSERT_TRUE(cl.ok()) << cl.status();
  auto session = (*cl)->NewSession();

  constexpr int kKeys = 40;
  SessionRecorder rec(kKeys);
  int round = 0;
  for (; round < 4; ++round) {
    ASSERT_EQ(rec.Record(session->Write(rec.Round(round))), kKeys) << "round " << round;
  }
  ASSERT_EQ(session->CurrentWorker(), (*proxy)->address());
  const std::string probe_key = rec.Key(1);  // (round 4 + 1) % 5 == 0: a delete
  const uint64_t probe_token = session->AckedVersion("products", probe_key);
  ASSERT_GT(probe_token, 0u);

  // The round the kill interrupts: held 2 s each way in the proxy.
  (*proxy)->Delay(absl::Seconds(2));
  std::vector<Mutation> killed_round = rec.Round(round);
  std::vector<WriteResult> killed_results;
  std::thread writer([&] { killed_results = session->Write(killed_round); });
  // Applied on the nodes (read through the other worker, no token): the probe
  // key's delete landed, its ack is on its way back through the proxy.
  bool applied = false;
  for (int i = 0; i < 200 && !applied; ++i) {
    v1::GetRequest req;
    req.set_index("products");
    req.set_pk(probe_key);
    v1::GetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    grpc::Status s = f.dataplane(1).Get(&ctx, req, &resp);
    applied = s.ok() && !resp.found() && resp.document().version() > probe_token;
    if (!applied) absl::SleepFor(absl::Milliseconds(25));
  }
  ASSERT_TRUE(applied) << "the interrupted round never reached the nodes";
  (*proxy)->Cut();  // the buffered acks are dropped with the connection
  ASSERT_TRUE(f.KillWorker(0).ok());
  writer.join();
  // Every item of the interrupted round was acknowledged by worker 1; the two
  // batches in flight at the cut (max_batches_in_flight) were sent twice.
  ASSERT_EQ(rec.Record(killed_results), kKeys);
  for (size_t i = 0; i < killed_results.size(); ++i) {
    const WriteResult& r = killed_results[i];
    if (i < 2 * static_cast<size_t>(co.max_batch_items)) {
      EXPECT_EQ(r.attempts, 2) << "item " << i << " in flight at the cut was not retried";
    } else {
      EXPECT_EQ(r.attempts, 1) << "item " << i << " was not held back by the window";
    }
    EXPECT_EQ(r.worker, f.worker_address(1)) << i;
  }
  EXPECT_EQ(session->CurrentWorker(), f.worker_address(1));
  ++round;

  // The session goes on through worker 1 with its tokens.
  for (const int last = round + 4; round < last; ++round) {
    ASSERT_EQ(rec.Record(session->Write(rec.Round(round))), kKeys) << "round " << round;
  }
  // Read your writes: every key reads as the session last wrote it.
  for (const auto& [key, r] : rec.records()) {
    auto got = session->Get("products", key);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status();
    EXPECT_EQ(got->found, !r.deleted) << key;
    if (!r.deleted) {
      EXPECT_EQ(got->body, r.body) << key;
    }
    EXPECT_GE(got->version, r.version) << key;
  }

  CheckOptions check = f.CheckOptionsFor("products");
  check.quiesce_timeout = absl::Seconds(120);
  auto report = CheckPromise(rec.records(), check);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_EQ(report->keys_checked, static_cast<uint64_t>(kKeys));
  EXPECT_EQ(report->keys_unknown, 0u);
}

}  // namespace
}  // namespace miroir::testing
