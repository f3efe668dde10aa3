// AntiEntropyRunner: drives anti-entropy runs (DESIGN §8, docs/anti-entropy.md).
// Each tick, in one commit: records finished AE_PASS tasks as the shards' last
// passes, starts the scheduled round when it is due (`anti_entropy.schedule`,
// `shards_per_pass` shards per round, rotating), and issues passes of unfinished
// runs up to `max_read_concurrency` in flight, skipping busy shards (a move on
// the shard, a reshard active or in retention). The PlanRunner leases the tasks.
//
// Tick() is called from the coordinator's runner thread (or a test); Start and
// Status from any thread.
#ifndef MIROIR_COORDINATOR_ANTI_ENTROPY_RUNNER_H_
#define MIROIR_COORDINATOR_ANTI_ENTROPY_RUNNER_H_

#include <atomic>
#include <cstdint>

#include "absl/status/statusor.h"
#include "miroir/v1/anti_entropy.pb.h"

namespace miroir::coordinator {

class Coordinator;

// Totals since the process started (Prometheus counters).
struct AeCounters {
  std::atomic<uint64_t> shards_scanned{0};
  std::atomic<uint64_t> mismatches{0};
  std::atomic<uint64_t> repaired{0};
  std::atomic<uint64_t> failed{0};
};

class AntiEntropyRunner {
 public:
  explicit AntiEntropyRunner(Coordinator* c) : c_(c) {}

  void Tick();

  // Schedules an operator's run. NOT_FOUND for an unknown index; INVALID_ARGUMENT
  // naming `shards` for a bad range. Nothing is saved on error.
  absl::StatusOr<v1::AntiEntropyRun> Start(const v1::AntiEntropyRunRequest& req);
  // Runs newest first (the one asked for, or the last 20) and last passes.
  v1::AntiEntropyStatusResponse Status(uint64_t run_id);

  const AeCounters& counters() const { return counters_; }

 private:
  Coordinator* const c_;
  AeCounters counters_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_ANTI_ENTROPY_RUNNER_H_
