#include "worker/fan_out.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "worker/view_change.h"

namespace miroir {
namespace {

struct FanOutState {
  absl::Mutex mu;
  size_t pending ABSL_GUARDED_BY(mu) = 0;
  std::vector<NodeResult> results ABSL_GUARDED_BY(mu);
  std::vector<bool> done ABSL_GUARDED_BY(mu);
  std::vector<uint64_t> tokens;  // InflightTracker entries; written before any request is sent
};

}  // namespace

std::vector<NodeResult> FanOut(ThreadPool* pool, uint64_t epoch, std::vector<NodeRequest> requests,
                               absl::Time deadline, InflightTracker* inflight) {
  auto state = std::make_shared<FanOutState>();
  const size_t n = requests.size();
  // Registered before any request is sent, so a drain never misses one.
  if (inflight != nullptr) {
    state->tokens.reserve(n);
    for (const NodeRequest& req : requests) {
      absl::flat_hash_set<std::string> shards;
      for (const auto& b : req.batches) {
        shards.insert(ShardKeyName(b.shard.index, b.shard.generation, b.shard.shard));
      }
      state->tokens.push_back(inflight->Begin(epoch, 0, std::move(shards)));
    }
  }
  {
    absl::MutexLock l(&state->mu);
    state->pending = n;
    state->results.assign(n, absl::DeadlineExceededError("not answered"));
    state->done.assign(n, false);
  }
  auto shared_requests = std::make_shared<std::vector<NodeRequest>>(std::move(requests));
  auto run = [state, shared_requests, epoch, inflight](size_t i) {
    const NodeRequest& req = (*shared_requests)[i];
    NodeResult r = req.store->ApplyMany(epoch, req.batches);
    if (inflight != nullptr) inflight->End(state->tokens[i]);
    absl::MutexLock l(&state->mu);
    state->results[i] = std::move(r);
    state->done[i] = true;
    --state->pending;
  };
  // Every node but the first on the pool; the first on the caller's thread (no
  // thread hop for the common single-node batch). The store's op timeout bounds it.
  for (size_t i = 1; i < n; ++i) pool->Submit([run, i] { run(i); });
  if (n > 0) run(0);
  absl::MutexLock l(&state->mu);
  auto all_done = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
    return state->pending == 0;
  };
  state->mu.AwaitWithDeadline(absl::Condition(&all_done), deadline);
  std::vector<NodeResult> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (state->done[i]) {
      out.push_back(state->results[i]);
    } else {
      out.push_back(absl::DeadlineExceededError(
          absl::StrCat("node ", (*shared_requests)[i].node, " did not answer before the deadline")));
    }
  }
  return out;
}

}  // namespace miroir
