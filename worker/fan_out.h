// FanOutTolerant: sends per-node batches of conditional mutations in parallel on
// a thread pool and waits for them until a deadline, without letting a slow or
// stopped node stall the round (DESIGN §4, slow nodes). A node that has not
// answered by the deadline gets DEADLINE_EXCEEDED (its late answer goes to
// `on_late` when set, else it is dropped).
//
// A suspected node is sent to only while fewer than max_inflight sends to it are
// outstanding (else UNAVAILABLE, not sent) and waited for at most
// straggler_bound; a node not suspected is waited for until it answers or
// becomes suspected (each suspect_timeout it stays unanswered is one timeout);
// due probes of suspected nodes start on the pool.
//
// Thread-safe; the caller's thread blocks until done or the deadline.
#ifndef MIROIR_WORKER_FAN_OUT_H_
#define MIROIR_WORKER_FAN_OUT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/inflight_tracker.h"
#include "worker/node_health.h"
#include "worker/stores/store_adapter.h"
#include "worker/thread_pool.h"

namespace miroir {

struct NodeRequest {
  std::string node;
  std::shared_ptr<StoreAdapter> store;
  std::vector<ShardMutations> batches;
};

using NodeResult = absl::StatusOr<std::vector<std::vector<ApplyResult>>>;

// The answer of a request FanOutTolerant stopped waiting for (straggler or deadline),
// called on the pool thread that got it. Must not block.
using LateAnswer = std::function<void(const NodeRequest&, const NodeResult&)>;

// Whether the answers so far (per request: answered with an OK status) are
// enough to stop waiting for suspected nodes (e.g. every item has some group's
// quorum among them). Called under FanOutTolerant's lock; must not block.
using EnoughAnswers = std::function<bool(const std::vector<bool>& answered_ok)>;

// One result per request, same order. `health` (shared: probes and late answers
// may outlive the call) decides who is waited for; every request runs on the pool.
// With `inflight`, each request sent is in flight there (at `epoch`, touching its
// batches' shards) from before it is sent until its node answers, even past the
// deadline: a cutover's drain waits only for the nodes that hold its shard, not
// for the slowest node of the round.
// A suspected node past straggler_bound is given up on only when `enough` (null:
// always) says the others' answers suffice; else it is waited for like any other.
// Likewise a suspected node at max_inflight is not sent to only when `enough`
// holds with every other request answered.
std::vector<NodeResult> FanOutTolerant(ThreadPool* pool, uint64_t epoch,
                                       std::vector<NodeRequest> requests, absl::Time deadline,
                                       InflightTracker* inflight,
                                       std::shared_ptr<NodeHealth> health, LateAnswer on_late,
                                       EnoughAnswers enough = nullptr);

// Starts a probe of `node` on the pool when one is due (NodeHealth::ProbeDue):
// a read-only round trip (Capacity) that clears the suspicion when it answers
// within suspect_timeout.
void MaybeProbe(ThreadPool* pool, const std::shared_ptr<NodeHealth>& health,
                const std::string& node, const std::shared_ptr<StoreAdapter>& store);

}  // namespace miroir

#endif  // MIROIR_WORKER_FAN_OUT_H_
