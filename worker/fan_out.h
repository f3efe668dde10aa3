// FanOut: sends per-node batches of conditional mutations in parallel on a
// thread pool and waits for all of them until a deadline. A node that has not
// answered by the deadline gets DEADLINE_EXCEEDED (its late answer is dropped).
//
// Thread-safe; the caller's thread blocks until done or the deadline.
#ifndef MIROIR_WORKER_FAN_OUT_H_
#define MIROIR_WORKER_FAN_OUT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/inflight_tracker.h"
#include "worker/stores/store_adapter.h"
#include "worker/thread_pool.h"

namespace miroir {

struct NodeRequest {
  std::string node;
  std::shared_ptr<StoreAdapter> store;
  std::vector<ShardMutations> batches;
};

using NodeResult = absl::StatusOr<std::vector<std::vector<ApplyResult>>>;

// One result per request, same order. With `inflight`, each request is in flight
// there (at `epoch`, touching its batches' shards) from before it is sent until
// its node answers, even past the deadline: a cutover's drain waits only for the
// nodes that hold its shard, not for the slowest node of the round.
std::vector<NodeResult> FanOut(ThreadPool* pool, uint64_t epoch, std::vector<NodeRequest> requests,
                               absl::Time deadline, InflightTracker* inflight = nullptr);

}  // namespace miroir

#endif  // MIROIR_WORKER_FAN_OUT_H_
