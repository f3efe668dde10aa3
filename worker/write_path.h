// WritePath: executes one client batch of puts and deletes (DESIGN §4):
// validate each item, stamp one version (above the client's after_version),
// route by the current view to every writing generation's write set, fan out per
// node in parallel, re-stamp and resend on "stored is newer" (bounded), refresh
// the view and re-route on "fenced", hold items of paused shards until a newer
// view releases them or the pause deadline passes, and acknowledge by the quorum
// rule over the LIVE generation's acking set. Never acks while a target that
// answered says its stored version is newer; never re-stamps after acking.
//
// Thread-safe: many streams call Write concurrently; items of one call are
// processed together and answered in order.
#ifndef MIROIR_WORKER_WRITE_PATH_H_
#define MIROIR_WORKER_WRITE_PATH_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "common/version.h"
#include "miroir/v1/dataplane.pb.h"
#include "worker/coordinator_link.h"
#include "worker/inflight_tracker.h"
#include "worker/node_stores.h"
#include "worker/router.h"
#include "worker/thread_pool.h"

namespace miroir {

struct WritePathOptions {
  absl::Duration write_deadline = absl::Seconds(5);  // per batch, from its arrival
  int max_restamps = 8;                              // re-stamps of one item
  uint64_t pause_queue_size = 10000;                 // items held for paused shards, worker-wide
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
  WritePath(Router* router, NodeStores* stores, HybridClock* hlc, ThreadPool* pool,
            InflightTracker* inflight, CoordinatorLink* link, WritePathOptions options)
      : router_(router),
        stores_(stores),
        hlc_(hlc),
        pool_(pool),
        inflight_(inflight),
        link_(link),
        options_(options) {}

  // One ack per item, same order. Never blocks past the write deadline (plus one
  // store op timeout at most for a node already being waited on).
  std::vector<v1::WriteAck> Write(const std::vector<const v1::WriteItem*>& items);

  const WritePathCounters& counters() const { return counters_; }

 private:
  struct Item;
  // One routing round over `pending` at `snap`; moves finished items out.
  void Round(const RoutingSnapshot& snap, std::vector<Item*>* pending, std::vector<Item*>* held,
             uint64_t* refresh_epoch, absl::Time deadline);
  void Finish(Item* item, absl::Status status);

  Router* router_;
  NodeStores* stores_;
  HybridClock* hlc_;
  ThreadPool* pool_;
  InflightTracker* inflight_;
  CoordinatorLink* link_;
  const WritePathOptions options_;
  WritePathCounters counters_;
};

}  // namespace miroir

#endif  // MIROIR_WORKER_WRITE_PATH_H_
