#include "worker/worker_config.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

TEST(WorkerConfig, DefaultsAndOverrides) {
  auto c = ParseWorkerConfig("", "w.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:7500");
  EXPECT_EQ(c->write.write_deadline, absl::Seconds(5));
  c = ParseWorkerConfig(
      "write_deadline: 750ms\nmax_batches_in_flight: 8\npause_queue_size: 10\n"
      "store:\n  op_timeout: 300ms\n  pool_size: 2\n",
      "w.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->write.write_deadline, absl::Milliseconds(750));
  EXPECT_EQ(c->max_batches_in_flight, 8);
  EXPECT_EQ(c->write.pause_queue_size, 10u);
  EXPECT_EQ(c->store.op_timeout_ms, 300);
  EXPECT_EQ(c->store.pool_size, 2);
}

TEST(WorkerConfig, MissQueueEntriesDefaultAndBounds) {
  auto c = ParseWorkerConfig("", "w.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->miss_queue_entries, 10000u);
  c = ParseWorkerConfig("miss_queue_entries: 50\n", "w.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->miss_queue_entries, 50u);
  c = ParseWorkerConfig("miss_queue_entries: 0\n", "w.yaml");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("miss_queue_entries"), absl::string_view::npos) << c.status();
}

TEST(WorkerConfig, SlowNodeKeysDefaultsAndBounds) {
  auto c = ParseWorkerConfig("", "w.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->write.slow.suspect_timeout, absl::Milliseconds(200));
  EXPECT_EQ(c->write.slow.suspect_after, 2);
  EXPECT_EQ(c->write.slow.straggler_bound, absl::Milliseconds(10));
  EXPECT_EQ(c->write.slow.max_inflight, 2);
  EXPECT_EQ(c->write.slow.probe_interval, absl::Milliseconds(200));
  EXPECT_EQ(c->write.slow.read_node_timeout, absl::Milliseconds(100));
  c = ParseWorkerConfig(
      "suspect_timeout: 50ms\nsuspect_after: 3\nstraggler_bound: 5ms\nmax_inflight: 0\n"
      "probe_interval: 1s\nread_node_timeout: 30ms\n",
      "w.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->write.slow.suspect_timeout, absl::Milliseconds(50));
  EXPECT_EQ(c->write.slow.suspect_after, 3);
  EXPECT_EQ(c->write.slow.straggler_bound, absl::Milliseconds(5));
  EXPECT_EQ(c->write.slow.max_inflight, 0);
  EXPECT_EQ(c->write.slow.probe_interval, absl::Seconds(1));
  EXPECT_EQ(c->write.slow.read_node_timeout, absl::Milliseconds(30));
  for (const char* bad : {"suspect_after: 0\n", "straggler_bound: 0s\n", "max_inflight: 5000\n"}) {
    c = ParseWorkerConfig(bad, "w.yaml");
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    const std::string key = std::string(bad).substr(0, std::string(bad).find(':'));
    EXPECT_NE(c.status().message().find(key), absl::string_view::npos) << c.status();
  }
}

TEST(WorkerConfig, ErrorsNameFileLineAndKey) {
  auto c = ParseWorkerConfig("listen: x\nbogus: 1\n", "w.yaml");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("bogus"), absl::string_view::npos) << c.status();
  c = ParseWorkerConfig("store:\n  pool_size: 0\n", "w.yaml");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("store.pool_size"), absl::string_view::npos) << c.status();
  c = ParseWorkerConfig("write_deadline: soon\n", "w.yaml");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("w.yaml"), absl::string_view::npos) << c.status();
}

}  // namespace
}  // namespace miroir
