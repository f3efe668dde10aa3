// Configuration of miroir-coordinator (DESIGN §11): the YAML keys, their
// defaults, and validation. Pure: parsing takes text, never opens sockets.
// Every key and its default is documented in docs/coordinator.md.
#ifndef MIROIR_COORDINATOR_CONFIG_H_
#define MIROIR_COORDINATOR_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls.h"

namespace miroir::coordinator {

struct MigrationConfig {
  bool skip_delta_pass = false;
  absl::Duration drain_timeout = absl::Milliseconds(20);
  uint64_t catch_up_threshold = 1000;
  absl::Duration catch_up_max = absl::Hours(1);
  absl::Duration max_write_stall = absl::Seconds(2);
  absl::Duration retain_moved_shard = absl::Hours(1);
  std::vector<std::string> allowed_windows;  // names or ranges; empty: any time
  // Documents per page of a move's copy tasks (backfill, catch-up, final delta,
  // reconcile). A page is one script per node: a fence queued behind it waits for
  // it, so smaller pages shorten cutover stalls (docs/benchmarks/moves.md, session 7).
  uint64_t backfill_batch_size = 200;
  uint64_t throttle_docs_per_s = 0;  // default backfill throttle, 0 = none
  uint64_t max_stall_retries = 3;    // cutovers unpaused before the move fails
  uint64_t task_retries = 5;         // retryable task failures before the move fails
  // Cutovers (moves holding writes: paused, final_delta) at once on one node; a
  // move whose node is at the limit keeps catching up. 0 = no limit.
  uint64_t max_cutovers_per_node = 1;
  bool auto_rejoin = true;  // a node whose incarnation changed is failed and rejoined by a plan
};

struct AntiEntropyConfig {
  bool enabled = true;
  absl::Duration schedule = absl::Hours(6);
  absl::Duration tombstone_grace = absl::Hours(24 * 7);
  uint64_t shards_per_pass = 64;           // shards one scheduled round passes over (rotating)
  uint64_t max_read_concurrency = 4;       // AE passes in flight at once
  uint64_t fingerprint_batch_size = 1000;  // documents per page of the digest scan
  uint64_t buckets = 256;                  // digest buckets per shard
  bool auto_repair = true;                 // false: report-only
};

struct ReshardingConfig {
  bool enabled = true;
  uint64_t backfill_concurrency = 4;
  uint64_t backfill_batch_size = 500;
  uint64_t throttle_docs_per_sec = 0;
  bool verify_before_swap = true;
  uint64_t retain_old_index_hours = 48;
  std::vector<std::string> allowed_windows;
};

// Where the coordinator's state lives (DESIGN §9): the embedded SQLite file, or
// etcd with fenced leadership among several coordinators (docs/ha.md).
struct EtcdConfig {
  std::vector<std::string> endpoints;  // [https://]HOST:PORT of every member
  std::string prefix = "/miroir";      // every key of this cluster lives under it
  absl::Duration lease_ttl = absl::Seconds(3);
  absl::Duration dial_timeout = absl::Seconds(5);
  absl::Duration request_timeout = absl::Seconds(5);
  // state.etcd.tls: {ca, cert, key}; none given: plaintext. ca alone: TLS with
  // the members verified; cert and key too: a client certificate is presented
  // (etcd --client-cert-auth).
  TlsFiles tls;
  // state.etcd.tls.server_name: the name every member's certificate is checked
  // against; empty: the endpoint's host.
  std::string tls_server_name;
};

// One state.etcd.endpoints entry: HOST:PORT, http://HOST:PORT or
// https://HOST:PORT.
struct EtcdEndpoint {
  std::string address;  // HOST:PORT
  bool https = false;   // written with https://
};
// INVALID_ARGUMENT naming state.etcd.endpoints for another scheme or no port.
absl::StatusOr<EtcdEndpoint> ParseEtcdEndpoint(const std::string& endpoint);
// The HOST:PORT of every endpoint. REQUIRES: the config validated.
std::vector<std::string> EtcdAddresses(const EtcdConfig& etcd);

struct StateConfig {
  std::string backend = "sqlite";  // sqlite | etcd
  EtcdConfig etcd;
};

struct CoordinatorConfig {
  // Process settings; flags override them.
  std::string listen = "127.0.0.1:7400";
  std::string data_dir = "./miroir-data";
  // The cluster this coordinator serves, recorded in the model at `cluster
  // init`; a coordinator pointed at another cluster's model (a shared etcd
  // prefix, a copied data dir) refuses to start. [a-z0-9_-]{1,64}.
  std::string cluster_name = "miroir";
  std::string metrics_listen;  // empty: no metrics endpoint
  std::string log_format = "text";
  std::string log_level = "info";
  TlsFiles tls;                  // tls: {cert, key, ca}; flags --tls-*
  std::string auth_tokens_file;  // auth.tokens_file; empty: every call accepted

  std::map<std::string, std::string> schedule_windows;  // name -> "HH:MM-HH:MM"
  MigrationConfig migration;
  absl::Duration worker_lease_ttl = absl::Seconds(10);
  absl::Duration max_clock_drift = absl::Milliseconds(500);
  AntiEntropyConfig anti_entropy;
  ReshardingConfig resharding;
  StateConfig state;

  // Test only (flag --test-allow-unsafe-skip-delta): lets a move skip the delta
  // pass with anti-entropy off, to measure the loss in the chaos report.
  bool test_allow_unsafe_skip_delta = false;
};

// Parses YAML text; `source` names it in errors ("FILE:LINE: KEY: what").
// INVALID_ARGUMENT on an unknown key, a wrong type or a malformed duration.
// Does not run Validate().
absl::StatusOr<CoordinatorConfig> ParseCoordinatorConfig(const std::string& text,
                                                         const std::string& source);
// Reads and parses a file.
absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path);

// Cross-key checks, run after flags override the file: drain_timeout ≤
// max_write_stall, every window name known and every range well formed,
// positive lease TTL, the etcd backend's keys (endpoints given, failover inside the
// worker lease: 2 × state.etcd.lease_ttl + one heartbeat < worker_lease_ttl,
// state.etcd.tls consistent with https:// endpoints and its files readable), and
// the delta-skip gate (skip_delta_pass=true with
// anti_entropy.enabled=false is refused naming both settings).
absl::Status ValidateCoordinatorConfig(const CoordinatorConfig& config);

// The message of the delta-skip gate, shared by config validation, plan
// creation and the check before activation.
inline constexpr char kDeltaSkipRefusal[] =
    "delta pass is skipped and anti-entropy is disabled "
    "(migration.skip_delta_pass=true, anti_entropy.enabled=false)";

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_CONFIG_H_
