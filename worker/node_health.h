// NodeHealth: which store nodes the worker suspects of being slow or stopped
// (DESIGN §4, "A slow or stopped node does not stall the write path"), as pure
// decisions over the times the caller passes in; no I/O, no clock of its own.
//
//  - A send (or read) to a node that stays unanswered `suspect_timeout` is one
//    timeout; every further `suspect_timeout` it stays unanswered is another.
//    `suspect_after` timeouts in a row (no send answered within suspect_timeout
//    between them) make the node suspected.
//  - Only a probe that answers within `suspect_timeout` clears a suspicion (an
//    answer to an ordinary send does not: a slow node answers, late).
//  - A suspected node gets at most `max_inflight` outstanding sends; AtCap tells
//    the caller when it has them (the caller does not send, and reports a miss,
//    unless the quorum needs the node), and each send is waited for at most
//    `straggler_bound`.
//  - One probe at a time per suspected node, at most every `probe_interval`.
//
// Thread-safe (one mutex; callers never hold it across I/O).
#ifndef MIROIR_WORKER_NODE_HEALTH_H_
#define MIROIR_WORKER_NODE_HEALTH_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace miroir {

struct SlowNodeOptions {
  absl::Duration suspect_timeout = absl::Milliseconds(200);
  int suspect_after = 2;
  absl::Duration straggler_bound = absl::Milliseconds(10);
  int max_inflight = 2;
  absl::Duration probe_interval = absl::Milliseconds(200);
  // A read (Get) asks the next read-set member when a node has not answered in
  // this long (a suspected node is not asked at all while others can answer).
  absl::Duration read_node_timeout = absl::Milliseconds(100);
};

// Counters the metrics read (monotonic).
struct NodeHealthCounters {
  std::atomic<uint64_t> suspicions{0};  // nodes that became suspected
  std::atomic<uint64_t> clears{0};      // suspicions a probe cleared
  std::atomic<uint64_t> straggler_sends{
      0};                                  // sends to suspected nodes not waited for past the bound
  std::atomic<uint64_t> skipped_sends{0};  // sends not made: max_inflight outstanding
  std::atomic<uint64_t> late_newer{0};     // late "stored is newer" answers from stragglers
  std::atomic<uint64_t> read_timeouts{0};  // reads that moved on past a slow node
};

class NodeHealth {
 public:
  explicit NodeHealth(SlowNodeOptions options) : options_(options) {}

  const SlowNodeOptions& options() const { return options_; }
  NodeHealthCounters& counters() { return counters_; }
  const NodeHealthCounters& counters() const { return counters_; }

  // Without locking while no node is suspected (the write path asks per request).
  bool Suspected(const std::string& node) const;
  // How many nodes are suspected now.
  size_t SuspectedCount() const { return suspected_count_.load(std::memory_order_acquire); }
  std::vector<std::string> SuspectedNodes() const;  // sorted

  // Whether `node` is suspected with max_inflight sends outstanding: the caller
  // sends to it only if the quorum needs it (the cap is the caller's to apply).
  bool AtCap(const std::string& node) const;
  // One more outstanding send to `node`; every BeginSend is matched by one EndSend.
  void BeginSend(const std::string& node);
  void EndSend(const std::string& node);

  // One more suspect_timeout passed with a send to `node` unanswered. True when
  // this made the node suspected.
  bool RecordTimeout(const std::string& node, absl::Time now);
  // A send to `node` was answered within suspect_timeout: the run of timeouts ends.
  void RecordAnswer(const std::string& node);

  // A probe of `node` should start now (suspected, none in flight, the last one
  // started probe_interval ago or more); marks it started.
  bool ProbeDue(const std::string& node, absl::Time now);
  // The probe started by ProbeDue ended; `answered_within` = it answered within
  // suspect_timeout, which clears the suspicion. True when it cleared it.
  bool ProbeDone(const std::string& node, bool answered_within);

 private:
  struct State {
    int timeouts = 0;  // in a row
    bool suspected = false;
    int outstanding = 0;  // sends begun, not ended
    bool probing = false;
    absl::Time last_probe = absl::InfinitePast();
  };
  const SlowNodeOptions options_;
  NodeHealthCounters counters_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, State> nodes_ ABSL_GUARDED_BY(mu_);
  // Nodes with State::suspected; changed under mu_ with the flag it counts.
  std::atomic<size_t> suspected_count_{0};
};

}  // namespace miroir

#endif  // MIROIR_WORKER_NODE_HEALTH_H_
