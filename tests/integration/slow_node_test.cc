// A slow or stopped store node does not stall the write path (DESIGN §4; issue
// 19 items 1 and 2), with real redis-server nodes, the real coordinator and
// workers, and the harness TestWriter:
//
//   (a) one store node SIGSTOPped under load: writes keep being acknowledged —
//       every 1 s window from 1 s after the stop until the SIGCONT acknowledges
//       at least 0.1x, and those windows together 0.5x, the healthy rate
//       measured in the same run (before the stop) — Gets keep answering, and after SIGCONT every
//       owner holds every acknowledged write (the promise, checked on the nodes). On the code
//       before this change (worker binary of ba20af5) it failed with the stopped windows at 4, 0,
//       4, 0 acknowledged batches against 307/s healthy (each batch waited the full write deadline,
//       2 s, for the stopped node) and no suspicion metric.
//   (b) a node that answers slowly (its proxy delays every chunk) is suspected
//       (worker metric miroir_worker_suspected_nodes 1, stragglers counted), and
//       cleared by a probe once it answers in time again; the promise holds.
//       On the code before this change it failed at the first wait: the metric
//       did not exist (no suspicion; "suspected" stayed false for 15 s).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chaos/chaos_faults.h"
#include "harness/fleet.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

// Acknowledged batches per 1 s window, by the window's start (ms since `t0`),
// counted at the time each ack arrived.
std::map<int64_t, int> AcksPerSecond(const WriterStats& st, int64_t t0_ms) {
  std::map<int64_t, int> out;
  for (size_t i = 0; i < st.batch_sent_ms.size(); ++i) {
    const int64_t acked_ms = st.batch_sent_ms[i] + st.batch_latencies_us[i] / 1000;
    out[(acked_ms - t0_ms) / 1000 * 1000] += 1;
  }
  return out;
}

FleetOptions SlowNodeFleet() {
  FleetOptions fo;
  fo.group_sizes = {2, 2};
  fo.indexes = {IndexSpec{"products", 16, 2}};
  fo.workers = 2;
  // The deadline of the local fleet in the issue: a batch that waits for a
  // stopped node waits this long.
  fo.per_worker_config[0] = "write_deadline: 2s\n";
  fo.per_worker_config[1] = "write_deadline: 2s\n";
  fo.per_worker_flags[0] = {"--metrics-listen", "127.0.0.1:0"};
  return fo;
}

// Gets of random written keys through worker 0 until `stop`; counts answers.
void GetLoop(Fleet& f, const std::atomic<bool>& stop, std::atomic<int>* ok,
             std::atomic<int>* failed) {
  for (int i = 0; i < 1'000'000 && !stop.load(); ++i) {
    pb::GetRequest req;
    req.set_index("products");
    req.set_pk(absl::StrCat("doc:", i % 400));
    pb::GetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = f.dataplane(0).Get(&ctx, req, &resp);
    (s.ok() ? *ok : *failed) += 1;
  }
}

TEST(SlowNode, StoppedStoreNodeDoesNotStallWritesAndThePromiseHoldsAfterCont) {
  TempDir tmp("slow-node-stop");
  auto fleet = Fleet::Start(tmp.path(), SlowNodeFleet());
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;

  WriterOptions wo = f.WriterOptionsFor("products");
  wo.streams = 4;
  wo.keys = 2000;
  wo.batch_size = 16;
  wo.max_duration = absl::Seconds(30);  // stopped by the test
  TestWriter writer(wo);
  const int64_t t0 = absl::ToUnixMillis(absl::Now());
  ASSERT_TRUE(writer.Start().ok());
  std::atomic<bool> stop_gets{false};
  std::atomic<int> gets_ok{0}, gets_failed{0};
  absl::SleepFor(absl::Seconds(4));  // healthy: windows 1..3 are the baseline
  const int64_t stop_ms = absl::ToUnixMillis(absl::Now()) - t0;
  ASSERT_TRUE(f.redis("r1").Stop().ok());
  std::thread gets([&] { GetLoop(f, stop_gets, &gets_ok, &gets_failed); });
  absl::SleepFor(absl::Seconds(6));
  const int gets_while_stopped = gets_ok.load();
  const int64_t cont_ms = absl::ToUnixMillis(absl::Now()) - t0;
  ASSERT_TRUE(f.redis("r1").Cont().ok());
  stop_gets = true;
  gets.join();
  absl::SleepFor(absl::Seconds(2));
  writer.Stop();
  writer.Wait();

  const WriterStats st = writer.stats();
  std::map<int64_t, int> per_second = AcksPerSecond(st, t0);
  int healthy = 0;
  for (int64_t w = 1000; w + 1000 <= stop_ms; w += 1000) healthy += per_second[w];
  const double healthy_rate = healthy / static_cast<double>((stop_ms - 1000) / 1000);
  ASSERT_GT(healthy_rate, 0) << "no baseline";
  std::string windows;
  int checked = 0;
  int stopped_total = 0;
  for (int64_t w = (stop_ms / 1000 + 2) * 1000; w + 1000 <= cont_ms; w += 1000) {
    absl::StrAppend(&windows, " ", per_second[w]);
    // Shares of the healthy rate generous for a shared 2-core machine (the
    // benchmark, bench/slow_node_driver, measures the real ratio): every window
    // acknowledges writes at all, and the stopped phase as a whole at half the
    // healthy rate. Before the change both were ~0.01.
    EXPECT_GE(per_second[w], 0.1 * healthy_rate)
        << "window at " << w << " ms; healthy " << healthy_rate
        << "/s; stopped windows:" << windows;
    stopped_total += per_second[w];
    ++checked;
  }
  ASSERT_GE(checked, 3) << "stop " << stop_ms << " cont " << cont_ms;
  EXPECT_GE(stopped_total / static_cast<double>(checked), 0.5 * healthy_rate)
      << "healthy " << healthy_rate << "/s; stopped windows:" << windows;
  // Reads answered from the other owners while r1 was stopped.
  EXPECT_GT(gets_while_stopped, 0);
  EXPECT_EQ(gets_failed.load(), 0);

  // Worker 0 suspected r1 and reported its misses (degraded acks).
  const int port = MetricsPort(f, 0);
  ASSERT_GT(port, 0);
  const std::string scrape = ScrapeMetrics(port);
  EXPECT_GE(MetricValue(scrape, "miroir_worker_node_suspicions_total"), 1) << scrape;
  EXPECT_GT(st.degraded, 0u);

  auto report = CheckPromise(writer.records(), f.CheckOptionsFor("products"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_EQ(report->lost, 0u);
  EXPECT_EQ(report->acknowledged_writes, st.acked());
}

TEST(SlowNode, SlowNodeIsSuspectedThenClearedWhenItAnswersInTimeAgain) {
  TempDir tmp("slow-node-delay");
  FleetOptions fo = SlowNodeFleet();
  fo.proxied_nodes = {"r2"};
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  Fleet& f = **fleet;
  const int port = MetricsPort(f, 0);
  ASSERT_GT(port, 0);
  auto metric = [&](const char* name) { return MetricValue(ScrapeMetrics(port), name); };

  WriterOptions wo = f.WriterOptionsFor("products");
  wo.streams = 2;
  wo.keys = 1000;
  wo.max_duration = absl::Seconds(60);  // stopped by the test
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Start().ok());
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(metric("miroir_worker_suspected_nodes"), 0);

  // Slow, not stopped: every chunk waits 400 ms each way, past suspect_timeout.
  f.node("r2").proxy->Delay(absl::Milliseconds(400));
  bool suspected = false;
  for (int i = 0; i < 150 && !suspected; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    suspected = metric("miroir_worker_suspected_nodes") == 1;
  }
  ASSERT_TRUE(suspected) << ScrapeMetrics(port);
  // Writes go on past the slow node: more acknowledged while it is suspected.
  const uint64_t acked_at_suspicion = writer.stats().acked();
  absl::SleepFor(absl::Seconds(2));
  EXPECT_GT(writer.stats().acked(), acked_at_suspicion);
  EXPECT_GT(metric("miroir_worker_straggler_sends_total") +
                metric("miroir_worker_straggler_skipped_total"),
            0);
  EXPECT_EQ(metric("miroir_worker_node_suspicions_cleared_total"), 0);

  // Fast again: a probe clears it.
  f.node("r2").proxy->Pass();
  bool cleared = false;
  for (int i = 0; i < 150 && !cleared; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    cleared = metric("miroir_worker_suspected_nodes") == 0;
  }
  ASSERT_TRUE(cleared) << ScrapeMetrics(port);
  EXPECT_GE(metric("miroir_worker_node_suspicions_cleared_total"), 1);
  writer.Stop();
  writer.Wait();

  auto report = CheckPromise(writer.records(), f.CheckOptionsFor("products"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_EQ(report->acknowledged_writes, writer.stats().acked());
}

}  // namespace
}  // namespace miroir::testing
