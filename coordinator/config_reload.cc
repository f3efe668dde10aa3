#include "coordinator/config_reload.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/duration.h"

namespace miroir::coordinator {
namespace {

std::string Bool(bool b) { return b ? "true" : "false"; }
std::string Dur(absl::Duration d) { return miroir::FormatDuration(d); }
std::string List(const std::vector<std::string>& v) {
  return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
}
std::string Windows(const std::map<std::string, std::string>& w) {
  std::vector<std::string> parts;
  for (const auto& [name, range] : w) parts.push_back(absl::StrCat(name, ": \"", range, "\""));
  return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
}

}  // namespace

// Keep in step with ConfigEntries' live flags.
void CopyLiveKeys(const CoordinatorConfig& from, CoordinatorConfig* to) {
  const MigrationConfig& m = from.migration;
  to->log_level = from.log_level;
  to->migration.drain_timeout = m.drain_timeout;
  to->migration.catch_up_threshold = m.catch_up_threshold;
  to->migration.catch_up_max = m.catch_up_max;
  to->migration.max_write_stall = m.max_write_stall;
  to->migration.retain_moved_shard = m.retain_moved_shard;
  to->migration.backfill_batch_size = m.backfill_batch_size;
  to->migration.throttle_docs_per_s = m.throttle_docs_per_s;
  to->migration.max_stall_retries = m.max_stall_retries;
  to->migration.task_retries = m.task_retries;
  to->migration.max_cutovers_per_node = m.max_cutovers_per_node;
  to->migration.auto_rejoin = m.auto_rejoin;
  const AntiEntropyConfig& a = from.anti_entropy;
  to->anti_entropy.schedule = a.schedule;
  to->anti_entropy.tombstone_grace = a.tombstone_grace;
  to->anti_entropy.shards_per_pass = a.shards_per_pass;
  to->anti_entropy.max_read_concurrency = a.max_read_concurrency;
  to->anti_entropy.fingerprint_batch_size = a.fingerprint_batch_size;
  to->anti_entropy.buckets = a.buckets;
  to->anti_entropy.auto_repair = a.auto_repair;
  const ReshardingConfig& r = from.resharding;
  to->resharding.backfill_concurrency = r.backfill_concurrency;
  to->resharding.backfill_batch_size = r.backfill_batch_size;
  to->resharding.throttle_docs_per_sec = r.throttle_docs_per_sec;
  to->resharding.verify_before_swap = r.verify_before_swap;
  to->resharding.retain_old_index_hours = r.retain_old_index_hours;
}

std::vector<ConfigKeyValue> ConfigEntries(const CoordinatorConfig& c) {
  const MigrationConfig& m = c.migration;
  const AntiEntropyConfig& a = c.anti_entropy;
  const ReshardingConfig& r = c.resharding;
  return {
      {"listen", c.listen, false},
      {"data_dir", c.data_dir, false},
      {"metrics_listen", c.metrics_listen, false},
      {"log_format", c.log_format, false},
      {"log_level", c.log_level, true},
      {"schedule_windows", Windows(c.schedule_windows), false},
      {"migration.skip_delta_pass", Bool(m.skip_delta_pass), false},
      {"migration.drain_timeout", Dur(m.drain_timeout), true},
      {"migration.catch_up_threshold", absl::StrCat(m.catch_up_threshold), true},
      {"migration.catch_up_max", Dur(m.catch_up_max), true},
      {"migration.max_write_stall", Dur(m.max_write_stall), true},
      {"migration.retain_moved_shard", Dur(m.retain_moved_shard), true},
      {"migration.allowed_windows", List(m.allowed_windows), false},
      {"migration.backfill_batch_size", absl::StrCat(m.backfill_batch_size), true},
      {"migration.throttle_docs_per_s", absl::StrCat(m.throttle_docs_per_s), true},
      {"migration.max_stall_retries", absl::StrCat(m.max_stall_retries), true},
      {"migration.task_retries", absl::StrCat(m.task_retries), true},
      {"migration.max_cutovers_per_node", absl::StrCat(m.max_cutovers_per_node), true},
      {"migration.auto_rejoin", Bool(m.auto_rejoin), true},
      {"worker_lease_ttl", Dur(c.worker_lease_ttl), false},
      {"max_clock_drift", Dur(c.max_clock_drift), false},
      {"anti_entropy.enabled", Bool(a.enabled), false},
      {"anti_entropy.schedule", absl::StrCat("every ", Dur(a.schedule)), true},
      {"anti_entropy.tombstone_grace", Dur(a.tombstone_grace), true},
      {"anti_entropy.shards_per_pass", absl::StrCat(a.shards_per_pass), true},
      {"anti_entropy.max_read_concurrency", absl::StrCat(a.max_read_concurrency), true},
      {"anti_entropy.fingerprint_batch_size", absl::StrCat(a.fingerprint_batch_size), true},
      {"anti_entropy.buckets", absl::StrCat(a.buckets), true},
      {"anti_entropy.auto_repair", Bool(a.auto_repair), true},
      {"resharding.enabled", Bool(r.enabled), false},
      {"resharding.backfill_concurrency", absl::StrCat(r.backfill_concurrency), true},
      {"resharding.backfill_batch_size", absl::StrCat(r.backfill_batch_size), true},
      {"resharding.throttle_docs_per_sec", absl::StrCat(r.throttle_docs_per_sec), true},
      {"resharding.verify_before_swap", Bool(r.verify_before_swap), true},
      {"resharding.retain_old_index_hours", absl::StrCat(r.retain_old_index_hours), true},
      {"resharding.allowed_windows", List(r.allowed_windows), false},
  };
}

absl::StatusOr<ConfigReload> PlanConfigReload(const CoordinatorConfig& running,
                                              const CoordinatorConfig& file) {
  ConfigReload out;
  out.config = running;
  CopyLiveKeys(file, &out.config);
  if (auto st = ValidateCoordinatorConfig(out.config); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("reload refused: ", st.message()));
  }
  const std::vector<ConfigKeyValue> before = ConfigEntries(running);
  const std::vector<ConfigKeyValue> wanted = ConfigEntries(file);
  for (size_t i = 0; i < before.size() && i < wanted.size(); ++i) {
    if (before[i].value == wanted[i].value) continue;
    ConfigKeyChange change{before[i].key, before[i].value, wanted[i].value};
    (before[i].live ? out.applied : out.restart_needed).push_back(std::move(change));
  }
  return out;
}

}  // namespace miroir::coordinator
