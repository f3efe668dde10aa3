#include "coordinator/config_reload.h"

#include <gtest/gtest.h>

#include <set>

namespace miroir::coordinator {
namespace {

const ConfigKeyValue* Find(const std::vector<ConfigKeyValue>& v, const std::string& key) {
  for (const auto& kv : v) {
    if (kv.key == key) return &kv;
  }
  return nullptr;
}

TEST(ConfigReload, EntriesNameEveryKeyOnceWithItsValue) {
  CoordinatorConfig c;
  c.migration.task_retries = 9;
  c.schedule_windows["night"] = "01:00-05:00";
  auto entries = ConfigEntries(c);
  std::set<std::string> keys;
  for (const auto& kv : entries) EXPECT_TRUE(keys.insert(kv.key).second) << kv.key;
  EXPECT_EQ(Find(entries, "migration.task_retries")->value, "9");
  EXPECT_TRUE(Find(entries, "migration.task_retries")->live);
  EXPECT_EQ(Find(entries, "schedule_windows")->value, "{night: \"01:00-05:00\"}");
  EXPECT_FALSE(Find(entries, "worker_lease_ttl")->live);
  EXPECT_FALSE(Find(entries, "anti_entropy.enabled")->live);
  EXPECT_FALSE(Find(entries, "migration.skip_delta_pass")->live);
}

TEST(ConfigReload, AppliesLiveKeysAndKeepsTheOthers) {
  CoordinatorConfig running;
  CoordinatorConfig file = running;
  file.migration.task_retries = 40;
  file.migration.throttle_docs_per_s = 300;
  file.worker_lease_ttl = absl::Seconds(30);
  file.migration.allowed_windows = {"01:00-02:00"};
  auto r = PlanConfigReload(running, file);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config.migration.task_retries, 40u);
  EXPECT_EQ(r->config.migration.throttle_docs_per_s, 300u);
  EXPECT_EQ(r->config.worker_lease_ttl, running.worker_lease_ttl);
  EXPECT_TRUE(r->config.migration.allowed_windows.empty());
  ASSERT_EQ(r->applied.size(), 2u);
  EXPECT_EQ(r->applied[0].key, "migration.throttle_docs_per_s");
  EXPECT_EQ(r->applied[1].key, "migration.task_retries");
  EXPECT_EQ(r->applied[1].old_value, "5");
  EXPECT_EQ(r->applied[1].new_value, "40");
  ASSERT_EQ(r->restart_needed.size(), 2u);
  EXPECT_EQ(r->restart_needed[0].key, "migration.allowed_windows");
  EXPECT_EQ(r->restart_needed[1].key, "worker_lease_ttl");
}

TEST(ConfigReload, ARefusedReloadNamesTheKey) {
  CoordinatorConfig running;
  CoordinatorConfig file = running;
  file.migration.drain_timeout = absl::Seconds(5);
  file.migration.max_write_stall = absl::Seconds(1);
  auto r = PlanConfigReload(running, file);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("migration.drain_timeout"), std::string::npos);
}

TEST(ConfigReload, CopyLiveKeysWritesEveryLiveKeyAndNothingElse) {
  // Every entry marked live differs after the copy from a config whose every
  // value differs; every other entry keeps the running value.
  CoordinatorConfig running;
  CoordinatorConfig other;
  other.listen = "x:1";
  other.data_dir = "d";
  other.metrics_listen = "m:2";
  other.log_format = "json";
  other.log_level = "debug";
  other.schedule_windows["w"] = "01:00-02:00";
  other.migration.skip_delta_pass = true;
  other.migration.drain_timeout = absl::Milliseconds(7);
  other.migration.catch_up_threshold = 7;
  other.migration.catch_up_max = absl::Minutes(7);
  other.migration.max_write_stall = absl::Seconds(7);
  other.migration.retain_moved_shard = absl::Minutes(7);
  other.migration.allowed_windows = {"w"};
  other.migration.backfill_batch_size = 7;
  other.migration.throttle_docs_per_s = 7;
  other.migration.max_stall_retries = 7;
  other.migration.task_retries = 7;
  other.migration.max_cutovers_per_node = 7;
  other.migration.auto_rejoin = false;
  other.worker_lease_ttl = absl::Seconds(7);
  other.max_clock_drift = absl::Seconds(7);
  other.anti_entropy.enabled = false;
  other.anti_entropy.schedule = absl::Hours(7);
  other.anti_entropy.tombstone_grace = absl::Hours(77);
  other.anti_entropy.shards_per_pass = 7;
  other.anti_entropy.max_read_concurrency = 7;
  other.anti_entropy.fingerprint_batch_size = 7;
  other.anti_entropy.buckets = 7;
  other.anti_entropy.auto_repair = false;
  other.resharding.enabled = false;
  other.resharding.backfill_concurrency = 7;
  other.resharding.backfill_batch_size = 7;
  other.resharding.throttle_docs_per_sec = 7;
  other.resharding.verify_before_swap = false;
  other.resharding.retain_old_index_hours = 7;
  other.resharding.allowed_windows = {"w"};
  const auto base = ConfigEntries(running);
  const auto changed = ConfigEntries(other);
  CoordinatorConfig copied = running;
  CopyLiveKeys(other, &copied);
  const auto after = ConfigEntries(copied);
  ASSERT_EQ(base.size(), after.size());
  for (size_t i = 0; i < base.size(); ++i) {
    ASSERT_NE(base[i].value, changed[i].value) << base[i].key << ": the test misses it";
    EXPECT_EQ(after[i].value, base[i].live ? changed[i].value : base[i].value) << base[i].key;
  }
}

}  // namespace
}  // namespace miroir::coordinator
