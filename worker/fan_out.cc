#include "worker/fan_out.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "worker/view_change.h"

namespace miroir {
namespace {

struct TolerantState {
  absl::Mutex mu;
  uint64_t answered ABSL_GUARDED_BY(mu) = 0;
  std::vector<NodeResult> results ABSL_GUARDED_BY(mu);
  std::vector<bool> done ABSL_GUARDED_BY(mu);
  std::vector<bool> ok ABSL_GUARDED_BY(mu);         // answered with an OK status
  std::vector<bool> abandoned ABSL_GUARDED_BY(mu);  // the caller stopped waiting
  std::vector<uint64_t> tokens;                     // written before any request is sent
};

}  // namespace

void MaybeProbe(ThreadPool* pool, const std::shared_ptr<NodeHealth>& health,
                const std::string& node, const std::shared_ptr<StoreAdapter>& store) {
  if (store == nullptr || !health->ProbeDue(node, absl::Now())) return;
  pool->Submit([health, node, store] {
    const absl::Time start = absl::Now();
    const bool ok = store->Capacity().ok();
    health->ProbeDone(node, ok && absl::Now() - start < health->options().suspect_timeout);
  });
}

std::vector<NodeResult> FanOutTolerant(ThreadPool* pool, uint64_t epoch,
                                       std::vector<NodeRequest> requests, absl::Time deadline,
                                       InflightTracker* inflight,
                                       std::shared_ptr<NodeHealth> health, LateAnswer on_late,
                                       EnoughAnswers enough) {
  auto state = std::make_shared<TolerantState>();
  const size_t n = requests.size();
  const SlowNodeOptions& opt = health->options();
  const absl::Time start = absl::Now();
  // A suspected node with max_inflight sends outstanding is not sent to, unless
  // the others cannot make the quorum even if they all answer.
  std::vector<bool> send(n, true);
  bool capped = false;
  for (size_t i = 0; i < n; ++i) {
    if (!health->Suspected(requests[i].node)) continue;
    MaybeProbe(pool, health, requests[i].node, requests[i].store);
    if (health->AtCap(requests[i].node)) {
      send[i] = false;
      capped = true;
    }
  }
  if (capped && enough && !enough(send)) send.assign(n, true);
  for (size_t i = 0; i < n; ++i) {
    if (send[i]) {
      health->BeginSend(requests[i].node);
    } else {
      health->counters().skipped_sends.fetch_add(1);
    }
  }
  if (inflight != nullptr) {
    state->tokens.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
      if (!send[i]) continue;
      absl::flat_hash_set<std::string> shards;
      for (const auto& b : requests[i].batches) {
        shards.insert(ShardKeyName(b.shard.index, b.shard.generation, b.shard.shard));
      }
      state->tokens[i] = inflight->Begin(epoch, 0, std::move(shards));
    }
  }
  {
    absl::MutexLock l(&state->mu);
    state->results.assign(n, absl::DeadlineExceededError("not answered"));
    state->done.assign(n, false);
    state->ok.assign(n, false);
    state->abandoned.assign(n, false);
    for (size_t i = 0; i < n; ++i) {
      if (send[i]) continue;
      state->results[i] = absl::UnavailableError(
          absl::StrCat("node ", requests[i].node, " is suspected slow and has ", opt.max_inflight,
                       " sends outstanding; not sent (reported as a miss)"));
      state->done[i] = true;
    }
  }
  auto shared_requests = std::make_shared<std::vector<NodeRequest>>(std::move(requests));
  for (size_t i = 0; i < n; ++i) {
    if (!send[i]) continue;
    pool->Submit([state, shared_requests, epoch, inflight, health, on_late, start, i] {
      const NodeRequest& req = (*shared_requests)[i];
      NodeResult r = req.store->ApplyMany(epoch, req.batches);
      health->EndSend(req.node);
      if (r.ok() && absl::Now() - start < health->options().suspect_timeout) {
        health->RecordAnswer(req.node);
      }
      if (inflight != nullptr) inflight->End(state->tokens[i]);
      bool late = false;
      {
        absl::MutexLock l(&state->mu);
        late = state->abandoned[i];
        if (!late) {
          state->ok[i] = r.ok();
          state->results[i] = r;
        }
        state->done[i] = true;
        ++state->answered;
      }
      if (late && on_late) on_late(req, r);
    });
  }

  std::vector<int> ticks(n, 0);  // suspect_timeouts counted per request
  absl::MutexLock l(&state->mu);
  while (true) {
    const absl::Time now = absl::Now();
    absl::Time next = deadline;
    bool waiting = false;
    int enough_now = -1;  // -1: not asked yet this pass
    for (size_t i = 0; i < n; ++i) {
      if (state->done[i] || state->abandoned[i]) continue;
      const std::string& node = (*shared_requests)[i].node;
      while (true) {
        if (health->Suspected(node)) {
          const absl::Time give_up = start + opt.straggler_bound;
          if (now >= give_up) {
            if (enough_now < 0) enough_now = (!enough || enough(state->ok)) ? 1 : 0;
            if (enough_now == 1) {
              state->abandoned[i] = true;
              health->counters().straggler_sends.fetch_add(1);
            } else {
              waiting = true;  // no quorum without it: wait for it (or the deadline)
            }
          } else {
            next = std::min(next, give_up);
            waiting = true;
          }
          break;
        }
        const absl::Time tick = start + opt.suspect_timeout * (ticks[i] + 1);
        if (now < tick) {
          next = std::min(next, tick);
          waiting = true;
          break;
        }
        ++ticks[i];
        health->RecordTimeout(node, now);
      }
    }
    if (!waiting || now >= deadline) break;
    const uint64_t seen = state->answered;
    auto changed = [&state, seen]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->answered != seen; };
    state->mu.AwaitWithDeadline(absl::Condition(&changed), next);
  }
  std::vector<NodeResult> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (state->done[i] && !state->abandoned[i]) {
      out.push_back(state->results[i]);
      continue;
    }
    const bool straggler = state->abandoned[i];
    state->abandoned[i] = true;  // its answer, when it comes, is late
    out.push_back(absl::DeadlineExceededError(
        straggler ? absl::StrCat("node ", (*shared_requests)[i].node,
                                 " is suspected slow: not waited for past straggler_bound")
                  : absl::StrCat("node ", (*shared_requests)[i].node,
                                 " did not answer before the deadline")));
  }
  return out;
}

}  // namespace miroir
