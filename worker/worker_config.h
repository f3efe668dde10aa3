// WorkerConfig: the worker's YAML keys with their defaults (docs/worker.md) and
// the loader. Pure parsing; any thread.
#ifndef MIROIR_WORKER_WORKER_CONFIG_H_
#define MIROIR_WORKER_WORKER_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "worker/stores/store_adapter.h"
#include "worker/write_path.h"

namespace miroir {

struct WorkerConfig {
  std::string listen = "127.0.0.1:7500";
  std::string coordinator = "127.0.0.1:7400";
  std::string metrics_listen;  // "" = off
  std::string log_format = "text";
  WritePathOptions write;         // write_deadline, max_restamps, pause_queue_size
  int max_batches_in_flight = 4;  // per Write stream
  int fanout_threads = 16;        // parallel per-node store calls, worker-wide
  uint32_t max_tasks = 2;
  // Misses kept per (node, shard) until a coordinator takes them; past it a node's
  // misses degrade to one per-node flag (worker/miss_queue.h).
  uint64_t miss_queue_entries = 10000;
  // DESIGN §13. tls: served to clients and presented to the coordinator (one CA
  // verifies both ways); auth.tokens_file: who may call DataPlane;
  // coordinator_token_file: the bearer token this worker sends the coordinator.
  TlsFiles tls;
  std::string auth_tokens_file;
  std::string coordinator_token_file;
  StoreOptions store;  // store.connect_timeout, store.op_timeout, store.pool_size
};

// Parses YAML text (`source` names it in errors). Unknown keys are refused.
absl::StatusOr<WorkerConfig> ParseWorkerConfig(const std::string& text, const std::string& source);
// Reads and parses a file.
absl::StatusOr<WorkerConfig> LoadWorkerConfig(const std::string& path);

}  // namespace miroir

#endif  // MIROIR_WORKER_WORKER_CONFIG_H_
