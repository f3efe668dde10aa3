#include "worker/worker_config.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/status_macros.h"
#include "common/yaml_config.h"

namespace miroir {
namespace {

absl::Status Fill(const YAML::Node& root, YamlReader& r, WorkerConfig* c) {
  if (!root || root.IsNull()) return absl::OkStatus();
  if (!root.IsMap()) return YamlError(r.source(), root, "(root)", "must be a map");
  if (auto s = r.OnlyKeys(root, "",
                          {"listen",
                           "coordinator",
                           "metrics_listen",
                           "log_format",
                           "write_deadline",
                           "max_restamps",
                           "pause_queue_size",
                           "max_batches_in_flight",
                           "fanout_threads",
                           "max_tasks",
                           "miss_queue_entries",
                           "store",
                           "suspect_timeout",
                           "suspect_after",
                           "straggler_bound",
                           "max_inflight",
                           "probe_interval",
                           "read_node_timeout",
                           "tls",
                           "auth",
                           "coordinator_token_file"});
      !s.ok()) {
    return s;
  }
#define MIROIR_TRY(expr) \
  if (absl::Status _s = (expr); !_s.ok()) return _s
  MIROIR_TRY(r.String(root, "", "listen", &c->listen));
  MIROIR_TRY(r.String(root, "", "coordinator", &c->coordinator));
  MIROIR_TRY(ReadTlsYaml(r, root, &c->tls));
  MIROIR_TRY(r.String(root, "", "coordinator_token_file", &c->coordinator_token_file));
  if (const YAML::Node a = root["auth"]; a && !a.IsNull()) {
    if (!a.IsMap()) return YamlError(r.source(), a, "auth", "must be a map {tokens_file}");
    MIROIR_TRY(r.OnlyKeys(a, "auth", {"tokens_file"}));
    MIROIR_TRY(r.String(a, "auth", "tokens_file", &c->auth_tokens_file));
  }
  MIROIR_TRY(r.String(root, "", "metrics_listen", &c->metrics_listen));
  MIROIR_TRY(r.String(root, "", "log_format", &c->log_format));
  MIROIR_TRY(r.Duration(root, "", "write_deadline", &c->write.write_deadline));
  uint64_t v = static_cast<uint64_t>(c->write.max_restamps);
  MIROIR_TRY(r.Uint(root, "", "max_restamps", &v));
  c->write.max_restamps = static_cast<int>(v);
  MIROIR_TRY(r.Uint(root, "", "pause_queue_size", &c->write.pause_queue_size));
  v = static_cast<uint64_t>(c->max_batches_in_flight);
  MIROIR_TRY(r.Uint(root, "", "max_batches_in_flight", &v));
  if (v == 0 || v > 1024) {
    return YamlError(r.source(), root["max_batches_in_flight"], "max_batches_in_flight",
                     "must be 1..1024");
  }
  c->max_batches_in_flight = static_cast<int>(v);
  v = static_cast<uint64_t>(c->fanout_threads);
  MIROIR_TRY(r.Uint(root, "", "fanout_threads", &v));
  if (v == 0 || v > 256) {
    return YamlError(r.source(), root["fanout_threads"], "fanout_threads", "must be 1..256");
  }
  c->fanout_threads = static_cast<int>(v);
  v = c->max_tasks;
  MIROIR_TRY(r.Uint(root, "", "max_tasks", &v));
  c->max_tasks = static_cast<uint32_t>(v);
  MIROIR_TRY(r.Uint(root, "", "miss_queue_entries", &c->miss_queue_entries));
  if (c->miss_queue_entries == 0 || c->miss_queue_entries > 10'000'000) {
    return YamlError(r.source(), root["miss_queue_entries"], "miss_queue_entries",
                     "must be 1..10000000");
  }
  SlowNodeOptions& slow = c->write.slow;
  for (auto [key, d] :
       {std::pair<const char*, absl::Duration*>{"suspect_timeout", &slow.suspect_timeout},
        {"straggler_bound", &slow.straggler_bound},
        {"probe_interval", &slow.probe_interval},
        {"read_node_timeout", &slow.read_node_timeout}}) {
    MIROIR_TRY(r.Duration(root, "", key, d));
    if (*d <= absl::ZeroDuration()) return YamlError(r.source(), root[key], key, "must be > 0");
  }
  v = static_cast<uint64_t>(slow.suspect_after);
  MIROIR_TRY(r.Uint(root, "", "suspect_after", &v));
  if (v == 0 || v > 1000) {
    return YamlError(r.source(), root["suspect_after"], "suspect_after", "must be 1..1000");
  }
  slow.suspect_after = static_cast<int>(v);
  v = static_cast<uint64_t>(slow.max_inflight);
  MIROIR_TRY(r.Uint(root, "", "max_inflight", &v));
  if (v > 1024) {
    return YamlError(r.source(), root["max_inflight"], "max_inflight", "must be 0..1024");
  }
  slow.max_inflight = static_cast<int>(v);
  if (root["store"]) {
    const YAML::Node s = root["store"];
    if (!s.IsMap()) return YamlError(r.source(), s, "store", "must be a map");
    MIROIR_TRY(r.OnlyKeys(
        s, "store",
        {"connect_timeout", "op_timeout", "pool_size", "username", "password_file", "insecure"}));
    MIROIR_TRY(r.String(s, "store", "username", &c->store.username));
    MIROIR_TRY(r.Bool(s, "store", "insecure", &c->store.insecure));
    std::string password_file;
    MIROIR_TRY(r.String(s, "store", "password_file", &password_file));
    if (!password_file.empty()) {
      // The secret itself stays out of every message: only the file is named.
      auto password = ReadTokenFile("store.password_file", password_file);
      if (!password.ok()) return password.status();
      c->store.password = *password;
    } else if (!c->store.username.empty()) {
      return YamlError(r.source(), s["username"], "store.password_file",
                       "is required with store.username (the ACL user's password)");
    }
    absl::Duration d = absl::Milliseconds(c->store.connect_timeout_ms);
    MIROIR_TRY(r.Duration(s, "store", "connect_timeout", &d));
    c->store.connect_timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(d));
    d = absl::Milliseconds(c->store.op_timeout_ms);
    MIROIR_TRY(r.Duration(s, "store", "op_timeout", &d));
    c->store.op_timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(d));
    v = static_cast<uint64_t>(c->store.pool_size);
    MIROIR_TRY(r.Uint(s, "store", "pool_size", &v));
    if (v == 0 || v > 256) {
      return YamlError(r.source(), s["pool_size"], "store.pool_size", "must be 1..256");
    }
    c->store.pool_size = static_cast<int>(v);
  }
#undef MIROIR_TRY
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WorkerConfig> ParseWorkerConfig(const std::string& text, const std::string& source) {
  auto root = ParseYaml(text, source);
  if (!root.ok()) return root.status();
  WorkerConfig c;
  YamlReader r(source);
  MIROIR_RETURN_IF_ERROR(Fill(*root, r, &c));
  return c;
}

absl::StatusOr<WorkerConfig> LoadWorkerConfig(const std::string& path) {
  auto root = LoadYamlFile(path);
  if (!root.ok()) return root.status();
  WorkerConfig c;
  YamlReader r(path);
  MIROIR_RETURN_IF_ERROR(Fill(*root, r, &c));
  return c;
}

}  // namespace miroir
