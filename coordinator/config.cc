#include "coordinator/config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/duration.h"
#include "common/status_macros.h"
#include "common/yaml_config.h"
#include "coordinator/fleet_spec.h"
#include "coordinator/move_gates.h"
#include "coordinator/schedule_window.h"

namespace miroir::coordinator {
namespace {

absl::Status ParseMigration(YamlReader& r, const YAML::Node& m, MigrationConfig* out) {
  const std::string p = "migration";
  MIROIR_RETURN_IF_ERROR(r.OnlyKeys(
      m, p,
      {"skip_delta_pass", "drain_timeout", "catch_up_threshold", "catch_up_max", "max_write_stall",
       "retain_moved_shard", "allowed_windows", "backfill_batch_size", "throttle_docs_per_s",
       "max_stall_retries", "task_retries", "auto_rejoin", "max_cutovers_per_node"}));
  MIROIR_RETURN_IF_ERROR(r.Bool(m, p, "skip_delta_pass", &out->skip_delta_pass));
  MIROIR_RETURN_IF_ERROR(r.Duration(m, p, "drain_timeout", &out->drain_timeout));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "catch_up_threshold", &out->catch_up_threshold));
  MIROIR_RETURN_IF_ERROR(r.Duration(m, p, "catch_up_max", &out->catch_up_max));
  MIROIR_RETURN_IF_ERROR(r.Duration(m, p, "max_write_stall", &out->max_write_stall));
  MIROIR_RETURN_IF_ERROR(r.Duration(m, p, "retain_moved_shard", &out->retain_moved_shard));
  MIROIR_RETURN_IF_ERROR(r.StringList(m, p, "allowed_windows", &out->allowed_windows));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "backfill_batch_size", &out->backfill_batch_size));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "throttle_docs_per_s", &out->throttle_docs_per_s));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "max_stall_retries", &out->max_stall_retries));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "task_retries", &out->task_retries));
  MIROIR_RETURN_IF_ERROR(r.Bool(m, p, "auto_rejoin", &out->auto_rejoin));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "max_cutovers_per_node", &out->max_cutovers_per_node));
  if (m["backfill_batch_size"] && out->backfill_batch_size == 0) {
    return YamlError(r.source(), m["backfill_batch_size"], "migration.backfill_batch_size",
                     "must be at least 1");
  }
  return absl::OkStatus();
}

absl::Status ParseAntiEntropy(YamlReader& r, const YAML::Node& m, AntiEntropyConfig* out) {
  const std::string p = "anti_entropy";
  MIROIR_RETURN_IF_ERROR(
      r.OnlyKeys(m, p,
                 {"enabled", "schedule", "tombstone_grace", "shards_per_pass",
                  "max_read_concurrency", "fingerprint_batch_size", "buckets", "auto_repair"}));
  MIROIR_RETURN_IF_ERROR(r.Bool(m, p, "enabled", &out->enabled));
  std::string schedule;
  MIROIR_RETURN_IF_ERROR(r.String(m, p, "schedule", &schedule));
  if (!schedule.empty()) {
    auto d = ParseSchedule(schedule);
    if (!d.ok()) {
      return YamlError(r.source(), m["schedule"], "anti_entropy.schedule",
                       std::string(d.status().message()));
    }
    out->schedule = *d;
  }
  MIROIR_RETURN_IF_ERROR(r.Duration(m, p, "tombstone_grace", &out->tombstone_grace));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "shards_per_pass", &out->shards_per_pass));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "max_read_concurrency", &out->max_read_concurrency));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "fingerprint_batch_size", &out->fingerprint_batch_size));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "buckets", &out->buckets));
  MIROIR_RETURN_IF_ERROR(r.Bool(m, p, "auto_repair", &out->auto_repair));
  for (const char* key :
       {"shards_per_pass", "max_read_concurrency", "fingerprint_batch_size", "buckets"}) {
    uint64_t v = 0;
    if (m[key] && r.Uint(m, p, key, &v).ok() && v == 0) {
      return YamlError(r.source(), m[key], absl::StrCat("anti_entropy.", key),
                       "must be at least 1");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseResharding(YamlReader& r, const YAML::Node& m, ReshardingConfig* out) {
  const std::string p = "resharding";
  MIROIR_RETURN_IF_ERROR(
      r.OnlyKeys(m, p,
                 {"enabled", "backfill_concurrency", "backfill_batch_size", "throttle_docs_per_sec",
                  "verify_before_swap", "retain_old_index_hours", "allowed_windows"}));
  MIROIR_RETURN_IF_ERROR(r.Bool(m, p, "enabled", &out->enabled));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "backfill_concurrency", &out->backfill_concurrency));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "backfill_batch_size", &out->backfill_batch_size));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "throttle_docs_per_sec", &out->throttle_docs_per_sec));
  MIROIR_RETURN_IF_ERROR(r.Bool(m, p, "verify_before_swap", &out->verify_before_swap));
  MIROIR_RETURN_IF_ERROR(r.Uint(m, p, "retain_old_index_hours", &out->retain_old_index_hours));
  MIROIR_RETURN_IF_ERROR(r.StringList(m, p, "allowed_windows", &out->allowed_windows));
  return absl::OkStatus();
}

absl::Status ParseState(YamlReader& r, const YAML::Node& m, StateConfig* out) {
  MIROIR_RETURN_IF_ERROR(r.OnlyKeys(m, "state", {"backend", "etcd"}));
  MIROIR_RETURN_IF_ERROR(r.String(m, "state", "backend", &out->backend));
  if (out->backend != "sqlite" && out->backend != "etcd") {
    return YamlError(r.source(), m["backend"], "state.backend",
                     absl::StrCat("must be sqlite or etcd, not '", out->backend, "'"));
  }
  const YAML::Node e = m["etcd"];
  if (!e || e.IsNull()) return absl::OkStatus();
  if (!e.IsMap()) return YamlError(r.source(), e, "state.etcd", "must be a map");
  const std::string p = "state.etcd";
  MIROIR_RETURN_IF_ERROR(r.OnlyKeys(
      e, p, {"endpoints", "prefix", "lease_ttl", "dial_timeout", "request_timeout", "tls"}));
  MIROIR_RETURN_IF_ERROR(r.StringList(e, p, "endpoints", &out->etcd.endpoints));
  MIROIR_RETURN_IF_ERROR(r.String(e, p, "prefix", &out->etcd.prefix));
  MIROIR_RETURN_IF_ERROR(r.Duration(e, p, "lease_ttl", &out->etcd.lease_ttl));
  MIROIR_RETURN_IF_ERROR(r.Duration(e, p, "dial_timeout", &out->etcd.dial_timeout));
  MIROIR_RETURN_IF_ERROR(r.Duration(e, p, "request_timeout", &out->etcd.request_timeout));
  const YAML::Node t = e["tls"];
  if (!t || t.IsNull()) return absl::OkStatus();
  const std::string tp = "state.etcd.tls";
  if (!t.IsMap()) return YamlError(r.source(), t, tp, "must be a map {ca, cert, key}");
  MIROIR_RETURN_IF_ERROR(r.OnlyKeys(t, tp, {"ca", "cert", "key", "server_name"}));
  MIROIR_RETURN_IF_ERROR(r.String(t, tp, "ca", &out->etcd.tls.ca));
  MIROIR_RETURN_IF_ERROR(r.String(t, tp, "cert", &out->etcd.tls.cert));
  MIROIR_RETURN_IF_ERROR(r.String(t, tp, "key", &out->etcd.tls.key));
  MIROIR_RETURN_IF_ERROR(r.String(t, tp, "server_name", &out->etcd.tls_server_name));
  return absl::OkStatus();
}

// TLS to etcd (docs/ha.md "TLS to etcd"): https:// endpoints need state.etcd.tls,
// and the files are readable PEM, cert and key together.
absl::Status ValidateEtcdTls(const EtcdConfig& e) {
  const bool tls = e.tls.enabled() || !e.tls.key.empty();
  std::set<std::string> hosts;
  for (const std::string& ep : e.endpoints) {
    auto parsed = ParseEtcdEndpoint(ep);
    if (!parsed.ok()) return parsed.status();
    if (parsed->https && !tls) {
      return absl::InvalidArgumentError(
          absl::StrCat("state.etcd.endpoints: '", ep,
                       "' is https:// but state.etcd.tls {ca, cert, key} is not set"));
    }
    if (tls && absl::StartsWith(ep, "http://")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state.etcd.endpoints: '", ep, "' is http:// but state.etcd.tls is set (use https://)"));
    }
    hosts.insert(miroir::HostOf(parsed->address));
  }
  if (!tls) {
    if (!e.tls_server_name.empty()) {
      return absl::InvalidArgumentError(
          "state.etcd.tls.server_name: needs state.etcd.tls.ca (or cert and key)");
    }
    return absl::OkStatus();
  }
  MIROIR_RETURN_IF_ERROR(miroir::ValidateTlsFiles(e.tls, /*server=*/false, "state.etcd.tls."));
  // One channel carries the requests and fails over between the members, and
  // gRPC checks one name on it: with members on several hosts, that name is
  // given (and every member's certificate carries it).
  if (hosts.size() > 1 && e.tls_server_name.empty()) {
    return absl::InvalidArgumentError(
        "state.etcd.tls.server_name: required when the endpoints are on more than one host "
        "(the one name every member's certificate carries; the coordinator fails over between "
        "members on one TLS channel)");
  }
  return absl::OkStatus();
}

absl::Status ValidateState(const CoordinatorConfig& c) {
  const StateConfig& s = c.state;
  if (s.backend != "sqlite" && s.backend != "etcd") {
    return absl::InvalidArgumentError(
        absl::StrCat("state.backend: must be sqlite or etcd, not '", s.backend, "'"));
  }
  if (s.backend != "etcd") return absl::OkStatus();
  const EtcdConfig& e = s.etcd;
  if (e.endpoints.empty()) {
    return absl::InvalidArgumentError("state.etcd.endpoints: at least one HOST:PORT is required");
  }
  for (const std::string& ep : e.endpoints) {
    if (auto parsed = ParseEtcdEndpoint(ep); !parsed.ok()) return parsed.status();
  }
  if (e.prefix.empty() || e.prefix[0] != '/' || e.prefix.back() == '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "state.etcd.prefix: must start with '/' and not end with one, not '", e.prefix, "'"));
  }
  // etcd grants leases in whole seconds.
  if (e.lease_ttl < absl::Seconds(1) || e.lease_ttl % absl::Seconds(1) != absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("state.etcd.lease_ttl: must be a whole number of seconds, at least 1s, not ",
                     miroir::FormatDuration(e.lease_ttl)));
  }
  for (const auto& [key, d] :
       {std::pair<const char*, absl::Duration>{"dial_timeout", e.dial_timeout},
        {"request_timeout", e.request_timeout}}) {
    if (d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat("state.etcd.", key, ": must be positive"));
    }
  }
  // DESIGN §9a: a failover (the old leader's lease runs out, a standby wins and
  // re-publishes) must fit inside the lease workers hold; workers heartbeat every
  // worker_lease_ttl / 3.
  const absl::Duration heartbeat = c.worker_lease_ttl / 3;
  if (2 * e.lease_ttl + heartbeat >= c.worker_lease_ttl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state.etcd.lease_ttl: 2 x ", miroir::FormatDuration(e.lease_ttl), " + one heartbeat (",
        miroir::FormatDuration(heartbeat), ") must be shorter than worker_lease_ttl (",
        miroir::FormatDuration(c.worker_lease_ttl),
        ") so a failover fits inside the worker lease"));
  }
  return ValidateEtcdTls(e);
}

absl::Status CheckWindows(const CoordinatorConfig& c, const std::vector<std::string>& windows,
                          const std::string& key) {
  auto resolved = ResolveWindows(windows, c.schedule_windows);
  if (!resolved.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": ", resolved.status().message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EtcdEndpoint> ParseEtcdEndpoint(const std::string& endpoint) {
  EtcdEndpoint out;
  absl::string_view rest = endpoint;
  if (absl::ConsumePrefix(&rest, "https://")) {
    out.https = true;
  } else if (!absl::ConsumePrefix(&rest, "http://") &&
             rest.find("://") != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("state.etcd.endpoints: '", endpoint,
                                                   "' is not HOST:PORT or https://HOST:PORT"));
  }
  const size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 || colon + 1 == rest.size() ||
      rest.find('/') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("state.etcd.endpoints: '", endpoint,
                                                   "' is not HOST:PORT or https://HOST:PORT"));
  }
  out.address = std::string(rest);
  return out;
}

std::vector<std::string> EtcdAddresses(const EtcdConfig& etcd) {
  std::vector<std::string> out;
  for (const std::string& ep : etcd.endpoints) {
    auto parsed = ParseEtcdEndpoint(ep);
    out.push_back(parsed.ok() ? parsed->address : ep);
  }
  return out;
}

absl::StatusOr<CoordinatorConfig> ParseCoordinatorConfig(const std::string& text,
                                                         const std::string& source) {
  CoordinatorConfig c;
  auto doc = ParseYaml(text, source);
  if (!doc.ok()) return doc.status();
  const YAML::Node& root = *doc;
  if (!root || root.IsNull()) return c;
  if (!root.IsMap()) return YamlError(source, root, "(top level)", "must be a map");
  YamlReader r(source);
  MIROIR_RETURN_IF_ERROR(
      r.OnlyKeys(root, "",
                 {"cluster_name", "listen", "data_dir", "metrics_listen", "log_format", "log_level",
                  "schedule_windows", "migration", "worker_lease_ttl", "max_clock_drift",
                  "anti_entropy", "resharding", "state", "tls", "auth"}));
  MIROIR_RETURN_IF_ERROR(ReadTlsYaml(r, root, &c.tls));
  if (const YAML::Node a = root["auth"]; a && !a.IsNull()) {
    if (!a.IsMap()) return YamlError(source, a, "auth", "must be a map {tokens_file}");
    MIROIR_RETURN_IF_ERROR(r.OnlyKeys(a, "auth", {"tokens_file"}));
    MIROIR_RETURN_IF_ERROR(r.String(a, "auth", "tokens_file", &c.auth_tokens_file));
  }
  MIROIR_RETURN_IF_ERROR(r.String(root, "", "cluster_name", &c.cluster_name));
  MIROIR_RETURN_IF_ERROR(r.String(root, "", "listen", &c.listen));
  MIROIR_RETURN_IF_ERROR(r.String(root, "", "data_dir", &c.data_dir));
  MIROIR_RETURN_IF_ERROR(r.String(root, "", "metrics_listen", &c.metrics_listen));
  MIROIR_RETURN_IF_ERROR(r.String(root, "", "log_format", &c.log_format));
  MIROIR_RETURN_IF_ERROR(r.String(root, "", "log_level", &c.log_level));
  MIROIR_RETURN_IF_ERROR(r.Duration(root, "", "worker_lease_ttl", &c.worker_lease_ttl));
  MIROIR_RETURN_IF_ERROR(r.Duration(root, "", "max_clock_drift", &c.max_clock_drift));
  if (const YAML::Node w = root["schedule_windows"]; w && !w.IsNull()) {
    if (!w.IsMap()) return YamlError(source, w, "schedule_windows", "must be a map name: range");
    for (const auto& kv : w) {
      const std::string name = kv.first.as<std::string>();
      if (!kv.second.IsScalar()) {
        return YamlError(source, kv.second, "schedule_windows." + name,
                         "must be a range \"HH:MM-HH:MM\"");
      }
      const std::string range = kv.second.as<std::string>();
      auto parsed = ParseWindowRange(range);
      if (!parsed.ok()) {
        return YamlError(source, kv.second, "schedule_windows." + name,
                         std::string(parsed.status().message()));
      }
      c.schedule_windows[name] = range;
    }
  }
  if (const YAML::Node m = root["migration"]; m && !m.IsNull()) {
    if (!m.IsMap()) return YamlError(source, m, "migration", "must be a map");
    MIROIR_RETURN_IF_ERROR(ParseMigration(r, m, &c.migration));
  }
  if (const YAML::Node m = root["anti_entropy"]; m && !m.IsNull()) {
    if (!m.IsMap()) return YamlError(source, m, "anti_entropy", "must be a map");
    MIROIR_RETURN_IF_ERROR(ParseAntiEntropy(r, m, &c.anti_entropy));
  }
  if (const YAML::Node m = root["resharding"]; m && !m.IsNull()) {
    if (!m.IsMap()) return YamlError(source, m, "resharding", "must be a map");
    MIROIR_RETURN_IF_ERROR(ParseResharding(r, m, &c.resharding));
  }
  if (const YAML::Node m = root["state"]; m && !m.IsNull()) {
    if (!m.IsMap()) return YamlError(source, m, "state", "must be a map");
    MIROIR_RETURN_IF_ERROR(ParseState(r, m, &c.state));
  }
  return c;
}

absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read config file"));
  std::stringstream text;
  text << in.rdbuf();
  return ParseCoordinatorConfig(text.str(), path);
}

absl::Status ValidateCoordinatorConfig(const CoordinatorConfig& c) {
  MIROIR_RETURN_IF_ERROR(ValidateIndexName("cluster_name", c.cluster_name));
  // The same gate as plan creation and activation (gates.cc): one rule. A config
  // that trips it is invalid input, so INVALID_ARGUMENT, without "plan refused".
  if (!CheckDeltaSkipGate(c.migration.skip_delta_pass, c).ok()) {
    return absl::InvalidArgumentError(kDeltaSkipRefusal);
  }
  if (c.anti_entropy.enabled && c.anti_entropy.tombstone_grace < c.anti_entropy.schedule) {
    // DESIGN §5: a tombstone may only be forgotten after a repairing pass that
    // reached every replica since it was applied; a grace shorter than the
    // interval could purge it before any pass copied it.
    return absl::InvalidArgumentError(absl::StrCat(
        "anti_entropy.tombstone_grace (", miroir::FormatDuration(c.anti_entropy.tombstone_grace),
        ") must not be shorter than the anti_entropy.schedule interval (",
        miroir::FormatDuration(c.anti_entropy.schedule), ")"));
  }
  if (c.migration.drain_timeout > c.migration.max_write_stall) {
    return absl::InvalidArgumentError(
        absl::StrCat("migration.drain_timeout (", miroir::FormatDuration(c.migration.drain_timeout),
                     ") must not exceed migration.max_write_stall (",
                     miroir::FormatDuration(c.migration.max_write_stall), ")"));
  }
  if (c.worker_lease_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("worker_lease_ttl: must be positive");
  }
  if (c.migration.max_write_stall <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("migration.max_write_stall: must be positive");
  }
  MIROIR_RETURN_IF_ERROR(CheckWindows(c, c.migration.allowed_windows, "migration.allowed_windows"));
  MIROIR_RETURN_IF_ERROR(
      CheckWindows(c, c.resharding.allowed_windows, "resharding.allowed_windows"));
  MIROIR_RETURN_IF_ERROR(ValidateState(c));
  if (c.log_format != "text" && c.log_format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("log_format: must be text or json, not '", c.log_format, "'"));
  }
  return absl::OkStatus();
}

}  // namespace miroir::coordinator
