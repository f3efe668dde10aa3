#include "coordinator/config_reload.h"

#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/duration.h"

namespace miroir::coordinator {
namespace {

using C = CoordinatorConfig;

std::string Show(const std::string& v) { return v; }
std::string Show(bool b) { return b ? "true" : "false"; }
std::string Show(uint64_t n) { return absl::StrCat(n); }
std::string Show(absl::Duration d) { return miroir::FormatDuration(d); }
std::string Show(const std::vector<std::string>& v) {
  return absl::StrCat("[", absl::StrJoin(v, ", "), "]");
}
std::string Show(const std::map<std::string, std::string>& w) {
  std::vector<std::string> parts;
  for (const auto& [name, range] : w) parts.push_back(absl::StrCat(name, ": \"", range, "\""));
  return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
}

// One key of the YAML file: how it is shown, and for a live key how a reload
// copies it. The one list both ConfigEntries and CopyLiveKeys read.
struct Key {
  const char* name;
  bool live;
  std::function<std::string(const C&)> show;
  std::function<void(const C&, C*)> copy;
};

template <typename T>
Key Top(const char* name, bool live, T C::*field) {
  return {name, live, [field](const C& c) { return Show(c.*field); },
          [field](const C& from, C* to) { to->*field = from.*field; }};
}

template <typename S, typename T>
Key In(const char* name, bool live, S C::*section, T S::*field) {
  return {name, live, [=](const C& c) { return Show(c.*section.*field); },
          [=](const C& from, C* to) { (to->*section).*field = from.*section.*field; }};
}

const std::vector<Key>& Keys() {
  using M = MigrationConfig;
  using A = AntiEntropyConfig;
  using R = ReshardingConfig;
  constexpr auto m = &C::migration;
  constexpr auto a = &C::anti_entropy;
  constexpr auto r = &C::resharding;
  static const auto* keys = new std::vector<Key>{
      Top("listen", false, &C::listen),
      Top("data_dir", false, &C::data_dir),
      Top("metrics_listen", false, &C::metrics_listen),
      Top("log_format", false, &C::log_format),
      Top("log_level", true, &C::log_level),
      Top("schedule_windows", false, &C::schedule_windows),
      In("migration.skip_delta_pass", false, m, &M::skip_delta_pass),
      In("migration.drain_timeout", true, m, &M::drain_timeout),
      In("migration.catch_up_threshold", true, m, &M::catch_up_threshold),
      In("migration.catch_up_max", true, m, &M::catch_up_max),
      In("migration.max_write_stall", true, m, &M::max_write_stall),
      In("migration.retain_moved_shard", true, m, &M::retain_moved_shard),
      In("migration.allowed_windows", false, m, &M::allowed_windows),
      In("migration.backfill_batch_size", true, m, &M::backfill_batch_size),
      In("migration.throttle_docs_per_s", true, m, &M::throttle_docs_per_s),
      In("migration.max_stall_retries", true, m, &M::max_stall_retries),
      In("migration.task_retries", true, m, &M::task_retries),
      In("migration.max_cutovers_per_node", true, m, &M::max_cutovers_per_node),
      In("migration.auto_rejoin", true, m, &M::auto_rejoin),
      Top("worker_lease_ttl", false, &C::worker_lease_ttl),
      Top("max_clock_drift", false, &C::max_clock_drift),
      In("anti_entropy.enabled", false, a, &A::enabled),
      // Written as the YAML takes it: "every 6h".
      {"anti_entropy.schedule", true,
       [](const C& c) { return absl::StrCat("every ", Show(c.anti_entropy.schedule)); },
       [](const C& from, C* to) { to->anti_entropy.schedule = from.anti_entropy.schedule; }},
      In("anti_entropy.tombstone_grace", true, a, &A::tombstone_grace),
      In("anti_entropy.shards_per_pass", true, a, &A::shards_per_pass),
      In("anti_entropy.max_read_concurrency", true, a, &A::max_read_concurrency),
      In("anti_entropy.fingerprint_batch_size", true, a, &A::fingerprint_batch_size),
      In("anti_entropy.buckets", true, a, &A::buckets),
      In("anti_entropy.auto_repair", true, a, &A::auto_repair),
      In("resharding.enabled", false, r, &R::enabled),
      In("resharding.backfill_concurrency", true, r, &R::backfill_concurrency),
      In("resharding.backfill_batch_size", true, r, &R::backfill_batch_size),
      In("resharding.throttle_docs_per_sec", true, r, &R::throttle_docs_per_sec),
      In("resharding.verify_before_swap", true, r, &R::verify_before_swap),
      In("resharding.retain_old_index_hours", true, r, &R::retain_old_index_hours),
      In("resharding.allowed_windows", false, r, &R::allowed_windows),
  };
  return *keys;
}

}  // namespace

void CopyLiveKeys(const CoordinatorConfig& from, CoordinatorConfig* to) {
  for (const Key& k : Keys()) {
    if (k.live) k.copy(from, to);
  }
}

std::vector<ConfigKeyValue> ConfigEntries(const CoordinatorConfig& c) {
  std::vector<ConfigKeyValue> out;
  out.reserve(Keys().size());
  for (const Key& k : Keys()) out.push_back({k.name, k.show(c), k.live});
  return out;
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
