// WritePath: executes one client batch of puts and deletes (DESIGN §4):
// validate each item, stamp one version (above the client's after_version),
// route by the current view to every writing generation's write set, fan out per
// node in parallel, re-stamp and resend on "stored is newer" (bounded), refresh
// the view and re-route on "fenced", hold items of paused shards until a newer
// view releases them or the pause deadline passes, and acknowledge by the quorum
// rule over the LIVE generation's acking set. Never acks while a target that
// answered says its stored version is newer; never re-stamps after acking.
//
// Slow nodes (DESIGN §4): a target that keeps timing out is suspected (NodeHealth;
// a probe clears it). An item is acknowledged once some group's acking quorum
// applied it, every target not suspected answered and none answered newer or
// fenced; a suspected target is waited for at most straggler_bound and gets at
// most max_inflight outstanding sends, the rest are reported misses (the miss
// queue, so a recovery pass repairs the replica). A late "newer" advances the HLC
// and is reported as a miss. Every error ack carries in `version` the highest
// version sent for the item (0: none), for the client's after_version.
//
// Time: the write deadline and the shards' pause deadlines are decided on the
// injected Clock (a ManualClock in tests); the waits block on real time for the
// span that clock says is left. Slow-node detection (NodeHealth, FanOutTolerant)
// measures the real time store calls take and does not use the clock.
//
// Thread-safe: many streams call Write concurrently; items of one call are
// processed together and answered in order.
#ifndef MIROIR_WORKER_WRITE_PATH_H_
#define MIROIR_WORKER_WRITE_PATH_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/version.h"
#include "miroir/v1/dataplane.pb.h"
#include "worker/coordinator_link.h"
#include "worker/inflight_tracker.h"
#include "worker/node_health.h"
#include "worker/node_stores.h"
#include "worker/router.h"
#include "worker/thread_pool.h"

namespace miroir {

struct WritePathOptions {
  absl::Duration write_deadline = absl::Seconds(5);  // per batch, from its arrival
  int max_restamps = 8;                              // re-stamps of one item
  uint64_t pause_queue_size = 10000;                 // items held for paused shards, worker-wide
  SlowNodeOptions slow;  // suspect_timeout, suspect_after, straggler_bound, max_inflight, ...
};

// Counters the metrics and heartbeats read.
struct WritePathCounters {
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> acks_ok{0};
  std::atomic<uint64_t> acks_error{0};
  std::atomic<uint64_t> degraded{0};
  std::atomic<uint64_t> fenced_retries{0};
  std::atomic<uint64_t> restamps{0};
  std::atomic<uint64_t> held{0};  // currently held for paused shards
};

class WritePath {
 public:
  // `clock` (not owned, outlives this) is the worker's time for deadlines; the
  // program passes SystemClock::Default() (not the HLC's test-skewed clock).
  WritePath(Router* router, NodeStores* stores, HybridClock* hlc, const Clock* clock,
            ThreadPool* pool, InflightTracker* inflight, CoordinatorLink* link,
            WritePathOptions options);
  // Late answers still arriving on the pool after this are dropped.
  ~WritePath();

  // One ack per item, same order. Never blocks past the write deadline (plus one
  // store op timeout at most for a node already being waited on).
  std::vector<v1::WriteAck> Write(const std::vector<const v1::WriteItem*>& items);

  const WritePathCounters& counters() const { return counters_; }
  // Which nodes are suspected slow; shared with reads (DataPlaneService::Get).
  const std::shared_ptr<NodeHealth>& health() const { return health_; }
  ThreadPool* pool() const { return pool_; }
  // The injected clock; DataPlaneService decides document expiry on it too.
  const Clock* clock() const { return clock_; }

 private:
  struct Item;
  // One routing round over `pending` at `snap`; moves finished items out.
  void Round(const RoutingSnapshot& snap, std::vector<Item*>* pending, std::vector<Item*>* held,
             uint64_t* refresh_epoch, int64_t deadline_ms);
  // The real time at which the clock reads `clock_ms` (now if it already does).
  absl::Time RealTimeAt(int64_t clock_ms) const;
  void Finish(Item* item, absl::Status status);
  struct LateSink;

  Router* router_;
  NodeStores* stores_;
  HybridClock* hlc_;
  const Clock* clock_;
  ThreadPool* pool_;
  InflightTracker* inflight_;
  CoordinatorLink* link_;
  const WritePathOptions options_;
  WritePathCounters counters_;
  std::shared_ptr<NodeHealth> health_;
  std::shared_ptr<LateSink> late_;
};

}  // namespace miroir

#endif  // MIROIR_WORKER_WRITE_PATH_H_
