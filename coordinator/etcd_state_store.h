// EtcdStateStore: the StateStore on etcd (DESIGN §9, docs/ha.md), laid out as
// EtcdLayout says. Every Commit is ONE etcd transaction that compares the
// leader key's create revision with this store's term, the epoch key with the
// epoch it last saw, and every bucket it rewrites with the revision it last saw;
// then writes. A deposed leader's commit therefore fails in etcd itself, whatever
// this process believes. A store without a term (a standby) loads and reads but
// refuses every commit with UNAVAILABLE.
//
// Thread-safe. No lock is held across an etcd call: concurrent commits are
// serialized by the revision compares (the loser gets ABORTED).
#ifndef MIROIR_COORDINATOR_ETCD_STATE_STORE_H_
#define MIROIR_COORDINATOR_ETCD_STATE_STORE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/etcd_client.h"
#include "coordinator/etcd_layout.h"
#include "coordinator/state_store.h"

namespace miroir::coordinator {

class EtcdStateStore : public StateStore {
 public:
  // `client` must outlive the store.
  EtcdStateStore(EtcdClient* client, std::string prefix);

  // Reads the whole model and remembers each bucket's revision.
  absl::StatusOr<LoadedState> Load() override;
  // REQUIRES: a term was set (SetTerm) and Load() ran since.
  // UNAVAILABLE when this store holds no term or etcd says the term is over
  // (deposed); FAILED_PRECONDITION for an epoch not strictly above the stored
  // one or a commit too large for one etcd transaction (naming the limit);
  // ABORTED when the model changed under this store. Nothing is written on error.
  absl::Status Commit(const StateWrite& write) override;
  absl::StatusOr<std::vector<std::string>> PlanEvents(uint64_t plan_id) override;
  absl::StatusOr<std::vector<std::string>> RecentAudit(int limit) override;

  // Called (outside the store's lock) when a commit finds the model in etcd
  // changed while this store's term still leads. Every commit of a coordinator
  // is serialized, so only a commit of its own whose answer was lost (a request
  // timeout, a member that died mid-call) can have changed it: the model in
  // memory is behind etcd's and must not be acted on (main: resign, exit 3; the
  // next leader loads the model). Without it the commit just fails ABORTED.
  void set_on_diverged(std::function<void(const std::string& why)> fn);

  // The leader term this store commits under (the create revision of the leader
  // key), or 0: refuse commits. Set by the leadership when it wins or loses.
  void SetTerm(int64_t term);
  int64_t term() const;
  uint64_t LeaderTerm() const override { return static_cast<uint64_t>(term()); }
  const EtcdLayout& layout() const { return layout_; }

 private:
  struct Bucket {
    int64_t mod_revision = 0;  // 0: the key does not exist
    BucketObjects objects;
  };

  EtcdClient* const client_;
  const EtcdLayout layout_;
  mutable absl::Mutex mu_;
  int64_t term_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void(const std::string&)> on_diverged_ ABSL_GUARDED_BY(mu_);
  bool unanswered_commit_ ABSL_GUARDED_BY(mu_) = false;  // a Txn failed without an answer
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t epoch_mod_revision_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_event_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);  // by key
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_ETCD_STATE_STORE_H_
