#include "common/metrics.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>
#include <vector>

namespace miroir {
namespace {

TEST(MetricsRegistry, RendersCountersAndGaugesInExpositionFormat) {
  MetricsRegistry r;
  r.GetCounter("miroir_writes_total", "Writes acknowledged.", {{"group", "g0"}}).Inc(3);
  r.GetCounter("miroir_writes_total", "Writes acknowledged.", {{"group", "g1"}}).Inc();
  r.GetGauge("miroir_routing_epoch", "Current epoch.").Set(42);
  r.GetGauge("miroir_ratio", "A fraction.").Set(0.25);
  EXPECT_EQ(r.Render(),
            "# HELP miroir_ratio A fraction.\n"
            "# TYPE miroir_ratio gauge\n"
            "miroir_ratio 0.25\n"
            "# HELP miroir_routing_epoch Current epoch.\n"
            "# TYPE miroir_routing_epoch gauge\n"
            "miroir_routing_epoch 42\n"
            "# HELP miroir_writes_total Writes acknowledged.\n"
            "# TYPE miroir_writes_total counter\n"
            "miroir_writes_total{group=\"g0\"} 3\n"
            "miroir_writes_total{group=\"g1\"} 1\n");
}

TEST(MetricsRegistry, SameNameAndLabelsIsTheSameSeries) {
  MetricsRegistry r;
  Counter& a = r.GetCounter("c_total", "h", {{"k", "v"}});
  Counter& b = r.GetCounter("c_total", "h", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
  a.Inc(2);
  EXPECT_EQ(b.Value(), 2);
  b.Inc(-5);  // ignored: counters never go down
  EXPECT_EQ(a.Value(), 2);
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  MetricsRegistry r;
  r.GetGauge("g", "line1\nline2 \\ end", {{"b", "q\"u\\o\nte"}, {"a", "x"}}).Set(-1.5);
  EXPECT_EQ(r.Render(),
            "# HELP g line1\\nline2 \\\\ end\n"
            "# TYPE g gauge\n"
            "g{a=\"x\",b=\"q\\\"u\\\\o\\nte\"} -1.5\n");
}

TEST(MetricsRegistry, HistogramBucketsAreCumulative) {
  MetricsRegistry r;
  Histogram& h = r.GetHistogram("stall_seconds", "Write stall.", {0.01, 0.1, 1}, {{"index", "p"}});
  h.Observe(0.005);
  h.Observe(0.01);  // le is inclusive
  h.Observe(0.5);
  h.Observe(7);
  EXPECT_EQ(r.Render(),
            "# HELP stall_seconds Write stall.\n"
            "# TYPE stall_seconds histogram\n"
            "stall_seconds_bucket{index=\"p\",le=\"0.01\"} 2\n"
            "stall_seconds_bucket{index=\"p\",le=\"0.1\"} 2\n"
            "stall_seconds_bucket{index=\"p\",le=\"1\"} 3\n"
            "stall_seconds_bucket{index=\"p\",le=\"+Inf\"} 4\n"
            "stall_seconds_sum{index=\"p\"} 7.515\n"
            "stall_seconds_count{index=\"p\"} 4\n");
}

TEST(MetricsRegistry, ConcurrentIncrementsAreNotLost) {
  MetricsRegistry r;
  Counter& c = r.GetCounter("n_total", "h");
  Gauge& g = r.GetGauge("g", "h");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Inc();
        g.Inc();
        g.Dec(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value(), 40000);
  EXPECT_EQ(g.Value(), 20000);
}

TEST(MetricsRegistryDeathTest, TypeMismatchIsAProgrammingError) {
  MetricsRegistry r;
  r.GetCounter("x", "h");
  EXPECT_DEATH(r.GetGauge("x", "h"), "registered with another type");
}

TEST(MetricsServer, ServesMetricsOverHttp) {
  MetricsRegistry r;
  r.GetCounter("miroir_http_test_total", "h").Inc(5);
  auto server = MetricsServer::Start("127.0.0.1:0", &r);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  httplib::Client client("127.0.0.1", (*server)->port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res->body.find("miroir_http_test_total 5\n"), std::string::npos) << res->body;
  auto missing = client.Get("/other");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(MetricsServer, RefusesMalformedListen) {
  MetricsRegistry r;
  for (const char* bad : {"nocolon", ":9", "127.0.0.1:x", "127.0.0.1:70000"}) {
    auto s = MetricsServer::Start(bad, &r);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("--metrics-listen"), std::string::npos);
  }
}

TEST(MetricsServer, EmptyListenDisablesTheProcessServer) {
  auto port = StartMetricsServer("");
  ASSERT_TRUE(port.ok());
  EXPECT_EQ(*port, 0);
}

}  // namespace
}  // namespace miroir

namespace miroir {
namespace {

TEST(MetricsRegistry, RetainGaugesDropsEverySeriesNotKept) {
  MetricsRegistry r;
  r.GetGauge("miroir_move_state", "State.", {{"plan", "1"}}).Set(3);
  r.GetGauge("miroir_move_state", "State.", {{"plan", "2"}}).Set(4);
  r.GetGauge("miroir_other", "Other.", {{"plan", "1"}}).Set(5);
  r.RetainGauges("miroir_move_state", {{{"plan", "2"}}});
  const std::string out = r.Render();
  EXPECT_EQ(out.find("miroir_move_state{plan=\"1\"}"), std::string::npos) << out;
  EXPECT_NE(out.find("miroir_move_state{plan=\"2\"} 4"), std::string::npos) << out;
  EXPECT_NE(out.find("miroir_other{plan=\"1\"} 5"), std::string::npos) << out;
  r.RetainGauges("miroir_unknown", {});  // no such family: nothing happens
}

}  // namespace
}  // namespace miroir
