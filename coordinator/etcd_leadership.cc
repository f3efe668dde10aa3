#include "coordinator/etcd_leadership.h"

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace miroir::coordinator {
namespace {

miroir::Counter& LeaderChanges() {
  return miroir::MetricsRegistry::Default().GetCounter(
      "miroir_coordinator_leader_changes_total",
      "Leaders this coordinator has seen take office on etcd (itself included).");
}

}  // namespace

EtcdLeadership::EtcdLeadership(EtcdClient* client, EtcdLayout layout, std::string address,
                               absl::Duration ttl)
    : client_(client), layout_(std::move(layout)), address_(std::move(address)), ttl_(ttl) {}

EtcdLeadership::~EtcdLeadership() { Shutdown(); }

void EtcdLeadership::set_on_lost(std::function<void()> fn) {
  absl::MutexLock l(&mu_);
  on_lost_ = std::move(fn);
}

bool EtcdLeadership::IsLeader() const {
  absl::MutexLock l(&mu_);
  return term_ != 0 && absl::Now() < lease_deadline_;
}

int64_t EtcdLeadership::term() const {
  absl::MutexLock l(&mu_);
  return term_;
}

std::string EtcdLeadership::last_seen_leader() const {
  absl::MutexLock l(&mu_);
  return term_ != 0 ? address_ : last_seen_leader_;
}

absl::StatusOr<std::string> EtcdLeadership::LeaderAddress() {
  etcdserverpb::RangeRequest req;
  req.set_key(layout_.LeaderKey());
  MIROIR_ASSIGN_OR_RETURN(etcdserverpb::RangeResponse resp, client_->Range(req));
  return resp.kvs_size() == 1 ? resp.kvs(0).value() : std::string();
}

absl::Status EtcdLeadership::EnsureLease() {
  {
    absl::MutexLock l(&mu_);
    if (lease_id_ != 0 && absl::Now() < lease_deadline_) return absl::OkStatus();
  }
  const absl::Time sent = absl::Now();
  MIROIR_ASSIGN_OR_RETURN(int64_t id, client_->LeaseGrant(absl::ToInt64Seconds(ttl_)));
  absl::MutexLock l(&mu_);
  lease_id_ = id;
  lease_deadline_ = sent + ttl_;
  if (!keepalive_.joinable()) keepalive_ = std::thread([this] { KeepAliveLoop(); });
  return absl::OkStatus();
}

void EtcdLeadership::set_member_value(std::string value) {
  absl::MutexLock l(&mu_);
  member_value_ = std::move(value);
}

void EtcdLeadership::RegisterMember() {
  etcdserverpb::PutRequest put;
  {
    absl::MutexLock l(&mu_);
    if (member_value_.empty() || member_lease_ == lease_id_) return;
    put.set_lease(lease_id_);
    put.set_value(member_value_);
  }
  put.set_key(layout_.MembersPrefix() + address_);
  if (auto r = client_->Put(put); r.ok()) {
    absl::MutexLock l(&mu_);
    member_lease_ = put.lease();
  } else {
    spdlog::warn("etcd: registering {} as a coordinator: {}", address_, r.status().ToString());
  }
}

absl::StatusOr<int64_t> EtcdLeadership::Campaign() {
  const absl::Time give_up = absl::Now() + client_->request_timeout() + ttl_;
  // Once etcd answered, a standby stays: its watch ends when the member it is
  // connected to dies, and the next campaign may meet an etcd election or no
  // quorum for a while; exiting then would leave no coordinator to take over.
  bool answered = false;
  absl::Time last_warning = absl::InfinitePast();
  while (true) {
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return absl::CancelledError("shutting down");
    }
    absl::Status st = EnsureLease();
    int64_t lease = 0;
    {
      absl::MutexLock l(&mu_);
      lease = lease_id_;
    }
    if (st.ok()) {
      RegisterMember();
      etcdserverpb::TxnRequest txn;
      auto* cmp = txn.add_compare();
      cmp->set_key(layout_.LeaderKey());
      cmp->set_target(etcdserverpb::Compare::CREATE);
      cmp->set_result(etcdserverpb::Compare::EQUAL);
      cmp->set_create_revision(0);
      auto* put = txn.add_success()->mutable_request_put();
      put->set_key(layout_.LeaderKey());
      put->set_value(address_);
      put->set_lease(lease);
      txn.add_failure()->mutable_request_range()->set_key(layout_.LeaderKey());
      auto resp = client_->Txn(txn);
      if (resp.ok()) answered = true;
      if (resp.ok() && resp->succeeded()) {
        LeaderChanges().Inc();
        absl::MutexLock l(&mu_);
        term_ = resp->header().revision();
        spdlog::info("etcd leadership won: term {} (lease {:x})", term_, lease_id_);
        return term_;
      }
      if (resp.ok()) {
        const auto& rr = resp->responses(0).response_range();
        if (rr.kvs_size() == 1) {
          {
            absl::MutexLock l(&mu_);
            if (rr.kvs(0).create_revision() != last_seen_term_) {
              last_seen_term_ = rr.kvs(0).create_revision();
              LeaderChanges().Inc();
            }
            last_seen_leader_ = rr.kvs(0).value();
          }
          spdlog::info("standby: the leader is {} (term {})", rr.kvs(0).value(),
                       rr.kvs(0).create_revision());
          WaitForLeaderGone(resp->header().revision());
          continue;
        }
        continue;  // the key went between compare and read: try again
      }
      st = resp.status();
    }
    if (!answered && absl::Now() > give_up) return st;
    if (absl::Now() - last_warning >= absl::Seconds(5)) {
      spdlog::warn("etcd campaign: {}; retrying", std::string(st.message()));
      last_warning = absl::Now();
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

void EtcdLeadership::WaitForLeaderGone(int64_t revision) {
  grpc::ClientContext ctx;
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    watch_ctx_ = &ctx;
  }
  etcdserverpb::WatchCreateRequest create;
  create.set_key(layout_.LeaderKey());
  create.set_start_revision(revision + 1);
  create.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  bool gone = false;
  client_->Watch(&ctx, create, [&gone](const etcdserverpb::WatchResponse& resp) {
    for (const auto& ev : resp.events()) {
      if (ev.type() == mvccpb::Event::DELETE) gone = true;
    }
    return !gone;
  });
  {
    absl::MutexLock l(&mu_);
    watch_ctx_ = nullptr;
  }
  if (gone) spdlog::info("standby: the leader key is gone; campaigning");
}

void EtcdLeadership::MarkLost(const std::string& why) {
  std::function<void()> fn;
  {
    absl::MutexLock l(&mu_);
    if (term_ == 0) {
      lease_id_ = 0;  // a standby grants a new lease on its next campaign
      return;
    }
    spdlog::error("etcd leadership lost (term {}): {}", term_, why);
    term_ = 0;
    lease_id_ = 0;
    fn = std::move(on_lost_);
  }
  if (fn) fn();
}

void EtcdLeadership::KeepAliveLoop() {
  const absl::Duration every = ttl_ / 3;
  // After a keep-alive that was not acknowledged (the member it went to died,
  // etcd is electing its leader), the next goes out soon, not a whole interval
  // later: a lease of 2 s has room for one lost round trip, not for two.
  const absl::Duration retry = std::min(every, absl::Milliseconds(100));
  while (true) {
    bool acknowledged = false;
    int64_t lease = 0;
    bool expired = false;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
      lease = lease_id_;
      // A process that was stopped (or starved) past its deadline leads no more,
      // whatever etcd answers next.
      expired = lease != 0 && absl::Now() >= lease_deadline_;
    }
    if (expired) {
      MarkLost("the lease's deadline passed before a keep-alive was acknowledged");
      continue;
    }
    if (lease != 0) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(every));
      auto stream = client_->lease()->LeaseKeepAlive(&ctx);
      etcdserverpb::LeaseKeepAliveRequest req;
      req.set_id(lease);
      const absl::Time sent = absl::Now();
      etcdserverpb::LeaseKeepAliveResponse resp;
      if (stream->Write(req) && stream->Read(&resp)) {
        if (resp.ttl() <= 0) {
          MarkLost("etcd says the lease expired");
        } else {
          acknowledged = true;
          absl::MutexLock l(&mu_);
          if (lease_id_ == lease) lease_deadline_ = sent + absl::Seconds(resp.ttl());
        }
      }
      stream->WritesDone();
      ctx.TryCancel();
      stream->Finish().IgnoreError();
    }
    absl::MutexLock l(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), lease != 0 && !acknowledged ? retry : every);
  }
}

void EtcdLeadership::Shutdown() {
  int64_t lease = 0;
  {
    absl::MutexLock l(&mu_);
    if (stopping_ && !keepalive_.joinable()) return;
    stopping_ = true;
    if (watch_ctx_ != nullptr) watch_ctx_->TryCancel();
    lease = lease_id_;
    lease_id_ = 0;
    term_ = 0;
  }
  if (keepalive_.joinable()) keepalive_.join();
  if (lease != 0) client_->LeaseRevoke(lease).IgnoreError();
}

}  // namespace miroir::coordinator
