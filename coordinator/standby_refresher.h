// StandbyRefresher: keeps a standby coordinator's read-only model fresh from
// etcd (DESIGN §9, "standbys serve reads"). One thread watches every key under
// the prefix (etcd's Watch API: no polling); another reloads the model after a
// change, at most once per `min_interval`, so a burst of commits costs one
// reload. After the watch is (re)established the model is reloaded once, so a
// change made between two watches is not missed.
//
// Thread-safe.
#ifndef MIROIR_COORDINATOR_STANDBY_REFRESHER_H_
#define MIROIR_COORDINATOR_STANDBY_REFRESHER_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/coordinator.h"
#include "coordinator/etcd_client.h"
#include "coordinator/etcd_layout.h"

namespace miroir::coordinator {

class StandbyRefresher {
 public:
  // `client` and `core` (a CreateStandby coordinator) must outlive this.
  StandbyRefresher(EtcdClient* client, EtcdLayout layout, Coordinator* core,
                   absl::Duration min_interval = absl::Milliseconds(100));
  ~StandbyRefresher();  // Stop()
  void Stop();

 private:
  void WatchLoop();
  void ReloadLoop();
  void MarkDirty();
  bool StoppingOrDirty() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || dirty_; }

  EtcdClient* const client_;
  const EtcdLayout layout_;
  Coordinator* const core_;
  const absl::Duration min_interval_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* watch_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread watcher_;
  std::thread reloader_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_STANDBY_REFRESHER_H_
