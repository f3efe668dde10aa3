// WorkerRegistry: the workers connected to this coordinator, their leases (TTL
// on the coordinator's clock), acked epochs and outgoing message queues.
// Thread-safe: session threads, the plan runner and the operator API all call it.
// Sending never blocks on the network: messages go to a per-session Outbox that
// the session's writer thread drains.
#ifndef MIROIR_COORDINATOR_WORKER_REGISTRY_H_
#define MIROIR_COORDINATOR_WORKER_REGISTRY_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "miroir/v1/worker_control.pb.h"

namespace miroir::coordinator {

namespace v1 = ::miroir::v1;

// Messages queued for one session's writer thread. Thread-safe.
class Outbox {
 public:
  void Push(v1::CoordinatorMessage msg);
  // Blocks until a message or Close(); nullopt once closed and drained.
  std::optional<v1::CoordinatorMessage> Pop();
  void Close();

 private:
  absl::Mutex mu_;
  std::deque<v1::CoordinatorMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

struct WorkerSnapshot {
  std::string id;
  std::string address;
  uint32_t max_tasks = 1;
  std::string version;  // build version it registered with ("" unknown)
  int64_t last_heartbeat_ms = 0;
  uint64_t acked_epoch = 0;
  uint64_t inflight_writes = 0;
  bool connected = false;
  // The worker said its last misses were reported and it stops (a final miss
  // report): the end of its session loses nothing.
  bool ended_clean = false;
};

class WorkerRegistry {
 public:
  WorkerRegistry(const Clock* clock, absl::Duration lease_ttl) : clock_(clock), ttl_(lease_ttl) {}

  // Registers (or re-registers) a worker with a fresh lease and outbox.
  std::shared_ptr<Outbox> Register(const std::string& id, const std::string& address,
                                   uint32_t max_tasks, const std::string& version = "");
  // Renews the lease. False if the worker is unknown (expired): it must re-register.
  bool Heartbeat(const std::string& id, uint64_t inflight, uint64_t acked_epoch);
  void Ack(const std::string& id, uint64_t epoch);
  // The session's stream ended; the lease runs out on its own.
  void Disconnect(const std::string& id, const std::shared_ptr<Outbox>& outbox);
  // Marks the worker's session as ended clean (its final miss report arrived).
  void EndedClean(const std::string& id);
  // Removes workers whose lease expired; returns them as they were.
  std::vector<WorkerSnapshot> ExpireLeases();

  bool IsLive(const std::string& id) const;
  // Registered and not expired yet (live or not).
  bool Known(const std::string& id) const;
  std::vector<WorkerSnapshot> Live() const;
  // Every live worker acked `epoch` or newer (vacuously true with none).
  bool AllLiveAcked(uint64_t epoch) const;
  // Queues `msg` for the worker; false if it is not connected.
  bool Send(const std::string& id, const v1::CoordinatorMessage& msg);
  // Queues `msg` for every connected worker.
  void Broadcast(const v1::CoordinatorMessage& msg);
  absl::Duration lease_ttl() const { return ttl_; }

 private:
  struct Worker {
    WorkerSnapshot info;
    std::shared_ptr<Outbox> outbox;
  };
  bool LiveLocked(const Worker& w, int64_t now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const Clock* clock_;
  const absl::Duration ttl_;
  mutable absl::Mutex mu_;
  std::map<std::string, Worker> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_WORKER_REGISTRY_H_
