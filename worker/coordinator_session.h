// CoordinatorSession: the worker's side of WorkerControl.Session
// (docs/task-protocol.md). Registers, heartbeats every lease_ttl/3 and tracks
// the lease on the monotonic clock, applies pushed views to the Router in epoch
// order and acks each once no write routed at an older epoch is in flight,
// refreshes the view with GetView after a fence, queues misses in a MissQueue
// and reports them with the ReportMisses RPC (at most once a second, numbered;
// kept until a coordinator answers OK, so they survive a control-plane outage),
// keeps ReadExclusions in step with those reports and with the coordinator's
// exclusion lists, sends node reports every few seconds, hands tasks to a
// TaskSink, and reconnects with backoff when the coordinator goes away. Stop
// sends the queue's last misses as the `stopping` report, so the coordinator
// knows the session ended clean. With several coordinators (etcd, one leads), a
// coordinator that stops answering — its registration or a heartbeat unanswered
// for a heartbeat interval (SIGSTOPped, partitioned: the TCP connection stays
// up) — is left for the next one, so the session follows a new leader within
// the lease (DESIGN §9a).
//
// Thread-safe. Owns four threads (stream, ticker, node reports, miss reports)
// between Start and Stop.
#ifndef MIROIR_WORKER_COORDINATOR_SESSION_H_
#define MIROIR_WORKER_COORDINATOR_SESSION_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "miroir/v1/worker_control.grpc.pb.h"
#include "worker/coordinator_link.h"
#include "worker/inflight_tracker.h"
#include "worker/miss_queue.h"
#include "worker/node_stores.h"
#include "worker/read_exclusions.h"
#include "worker/router.h"
#include "worker/term_gate.h"
#include "worker/view_change.h"

namespace miroir {

// Receives the task messages of the session (implemented by TaskRunner).
class TaskSink {
 public:
  virtual ~TaskSink() = default;
  virtual void OnTask(const v1::Task& task) = 0;
  virtual void OnCancel(uint64_t task_id) = 0;
  // `accepted` false: the progress of run `lease_generation` of the task was stale.
  virtual void OnCheckpointAck(uint64_t task_id, uint64_t lease_generation, bool accepted) = 0;
  // The session stream ended: running tasks keep going; their next progress
  // goes to the next stream.
};

struct SessionOptions {
  // HOST:PORT, or a comma-separated list of coordinators (etcd backend, one
  // leads): the session follows whichever answers (docs/ha.md).
  std::string coordinator = "127.0.0.1:7400";
  std::string worker_id;
  std::string address;  // our DataPlane address
  uint32_t max_tasks = 2;
  absl::Duration node_report_interval = absl::Seconds(3);
  absl::Duration max_backoff = absl::Seconds(2);
  // Bound of the miss queue in (node, shard) entries (worker config
  // `miss_queue_entries`); past it a node's misses degrade to a per-node flag.
  size_t miss_queue_entries = MissQueue::kDefaultMaxEntries;
  absl::Duration miss_report_interval = absl::Seconds(1);
  // TEST ONLY (--test-ack-delay-ms): a routing ack waits this long after its
  // epoch is applied, so tests can catch the states that wait for acks.
  absl::Duration test_ack_delay = absl::ZeroDuration();
};

class CoordinatorSession : public CoordinatorLink {
 public:
  CoordinatorSession(SessionOptions options, Router* router, InflightTracker* inflight,
                     NodeStores* stores);
  ~CoordinatorSession() override;

  void set_task_sink(TaskSink* sink);
  // Where the coordinator's read-exclusion lists and this worker's own reported
  // misses go (null: nowhere). REQUIRES: called before Start.
  void set_read_exclusions(ReadExclusions* exclusions) { read_exclusions_ = exclusions; }
  // Our DataPlane address as registered. REQUIRES: called before Start.
  void set_address(const std::string& address) { options_.address = address; }
  void Start();
  // Stops the threads, then reports the queued misses as the `stopping` report
  // (one attempt, bounded). REQUIRES: no write is served any more.
  void Stop();

  // CoordinatorLink.
  bool LeaseValid() const override;
  void RefreshView(uint64_t min_epoch) override;
  void ReportMiss(const std::string& node, const std::string& index, uint64_t generation,
                  uint32_t shard) override;

  // Sends one message on the current stream; false when not connected.
  bool Send(const v1::WorkerMessage& msg);
  bool Connected() const;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  void StreamLoop();
  void RunOneStream();
  void TickerLoop();
  void NodeReportLoop();
  void MissReportLoop();
  // Reports what the miss queue holds (with `stopping`, even when empty); puts it
  // back when the coordinator does not answer OK. True when reported.
  bool FlushMisses(bool stopping);
  void OnView(const v1::ClusterView& view);
  // Sends the routing ack of the newest drained epoch. Returns true while an ack
  // is still pending.
  bool MaybeAck();
  // With several coordinators: true (and the stream cancelled) when the one
  // followed left the registration or the oldest heartbeat unanswered too long.
  bool CancelIfSilent(SteadyTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendNodeReports();

  SessionOptions options_;  // written only before Start
  Router* const router_;
  InflightTracker* const inflight_;
  NodeStores* const stores_;
  ReadExclusions* read_exclusions_ = nullptr;  // written only before Start
  // One stub per listed coordinator; `current_` is the one followed. Never
  // resized after construction, so stub() is safe from any thread.
  std::vector<std::string> coordinators_;
  std::vector<std::unique_ptr<v1::WorkerControl::Stub>> stubs_;
  std::atomic<size_t> current_{0};
  v1::WorkerControl::Stub* stub() { return stubs_[current_.load() % stubs_.size()].get(); }

  absl::Notification stop_;
  std::thread stream_thread_, ticker_thread_, report_thread_, miss_thread_;
  MissQueue misses_;
  // Serialises adding a miss (queue + own exclusion) with taking a report and
  // numbering it, so a report confirms exactly the own misses it carries.
  absl::Mutex miss_mu_;                                // taken after mu_ when both are held
  uint64_t report_seq_ ABSL_GUARDED_BY(miss_mu_) = 0;  // seq of the last report taken
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> miss_report_failing_{false};  // log a failing report once per outage

  mutable absl::Mutex mu_;
  TaskSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  SteadyTime stream_started_ ABSL_GUARDED_BY(mu_);  // when ctx_ was set
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  // The highest coordinator term seen: a lower one's views, tasks and sessions
  // are dropped (a deposed leader; DESIGN §9a).
  TermGate terms_ ABSL_GUARDED_BY(mu_);
  uint64_t HighestTerm() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    return terms_.highest();
  }
  uint64_t lease_ttl_ms_ ABSL_GUARDED_BY(mu_) = 0;
  SteadyTime lease_until_ ABSL_GUARDED_BY(mu_);
  SteadyTime next_heartbeat_ ABSL_GUARDED_BY(mu_);
  std::deque<SteadyTime> heartbeat_sends_ ABSL_GUARDED_BY(mu_);
  // Applied epochs not yet drained, in epoch order, with what each changed.
  struct PendingAck {
    uint64_t epoch = 0;
    ViewChange change;
    SteadyTime applied;
  };
  std::deque<PendingAck> pending_acks_ ABSL_GUARDED_BY(mu_);
  uint64_t drained_epoch_ ABSL_GUARDED_BY(mu_) = 0;  // highest epoch drained
  uint64_t acked_epoch_ ABSL_GUARDED_BY(mu_) = 0;

  // Serialises writes on the stream (gRPC allows one writer at a time).
  absl::Mutex send_mu_;
  grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>* stream_
      ABSL_GUARDED_BY(send_mu_) = nullptr;
};

}  // namespace miroir

#endif  // MIROIR_WORKER_COORDINATOR_SESSION_H_
