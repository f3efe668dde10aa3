// EtcdLeadership: one coordinator's campaign for leadership on etcd (DESIGN §9).
// The leader holds an etcd lease (kept alive every ttl/3) and the leader key,
// created under that lease by a create-revision-0 transaction; the key's create
// revision is the leader's term. Standbys watch the key and campaign when it
// goes. This process stops believing it leads as soon as its lease may have
// expired (the last acknowledged keep-alive's send time + TTL), without
// waiting to hear it from etcd: a SIGSTOPped or partitioned leader resumes
// already deposed. Its commits are refused by etcd in any case (EtcdStateStore).
//
// Thread-safe. Campaign() blocks the calling thread; keep-alives run on a thread
// of their own.
#ifndef MIROIR_COORDINATOR_ETCD_LEADERSHIP_H_
#define MIROIR_COORDINATOR_ETCD_LEADERSHIP_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/etcd_client.h"
#include "coordinator/etcd_layout.h"

namespace miroir::coordinator {

class EtcdLeadership {
 public:
  // `client` must outlive this. `address` is what the leader key holds (the
  // address clients are sent to). REQUIRES: ttl a whole number of seconds ≥ 1.
  EtcdLeadership(EtcdClient* client, EtcdLayout layout, std::string address, absl::Duration ttl);
  ~EtcdLeadership();  // stops keep-alives and revokes the lease (resigns)

  // Blocks until this process leads and returns its term, or until Shutdown():
  // CANCELLED. UNAVAILABLE when etcd keeps failing past the request timeout
  // before it answered once; after that a standby waits out any etcd outage
  // (a member killed, quorum lost), campaigning again when etcd answers.
  absl::StatusOr<int64_t> Campaign();
  // What this process registers under PREFIX/members/ADDRESS with its lease
  // while it runs (serialized v1::CoordinatorMember). REQUIRES: before Campaign.
  void set_member_value(std::string value);
  // Called once, from the keep-alive thread, when leadership is lost.
  void set_on_lost(std::function<void()> fn);

  // True while this process holds the leader key and its lease cannot have
  // expired yet.
  bool IsLeader() const;
  int64_t term() const;
  // The current leader's address ("" when none), read from etcd.
  absl::StatusOr<std::string> LeaderAddress();

  // The leader's address as this process last saw it while campaigning ("" none).
  std::string last_seen_leader() const;

  // Stops the keep-alives and a running Campaign; revokes the lease.
  void Shutdown();

 private:
  absl::Status EnsureLease();
  // Puts the member key under the current lease if it is not there yet.
  void RegisterMember();
  void KeepAliveLoop();
  // Blocks until the leader key is deleted after `revision`, or shutdown.
  void WaitForLeaderGone(int64_t revision);
  void MarkLost(const std::string& why);

  EtcdClient* const client_;
  const EtcdLayout layout_;
  const std::string address_;
  const absl::Duration ttl_;

  mutable absl::Mutex mu_;
  int64_t lease_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time lease_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t term_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_seen_leader_ ABSL_GUARDED_BY(mu_);
  int64_t last_seen_term_ ABSL_GUARDED_BY(mu_) = 0;  // counted in leader_changes_total
  std::string member_value_ ABSL_GUARDED_BY(mu_);
  int64_t member_lease_ ABSL_GUARDED_BY(mu_) = 0;  // lease the member key was put under
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> on_lost_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* watch_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread keepalive_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_ETCD_LEADERSHIP_H_
