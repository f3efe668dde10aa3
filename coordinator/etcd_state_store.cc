#include "coordinator/etcd_state_store.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "miroir/v1/etcd_state.pb.h"

namespace miroir::coordinator {
namespace {

using etcdserverpb::Compare;

void AddCompare(etcdserverpb::TxnRequest* txn, const std::string& key,
                Compare::CompareTarget target, int64_t revision) {
  Compare* c = txn->add_compare();
  c->set_key(key);
  c->set_result(Compare::EQUAL);
  c->set_target(target);
  if (target == Compare::CREATE) {
    c->set_create_revision(revision);
  } else {
    c->set_mod_revision(revision);
  }
}

void AddPut(etcdserverpb::TxnRequest* txn, const std::string& key, const std::string& value) {
  auto* put = txn->add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
}

void AddDelete(etcdserverpb::TxnRequest* txn, const std::string& key) {
  txn->add_success()->mutable_request_delete_range()->set_key(key);
}

}  // namespace

EtcdStateStore::EtcdStateStore(EtcdClient* client, std::string prefix)
    : client_(client), layout_(std::move(prefix)) {}

void EtcdStateStore::set_on_diverged(std::function<void(const std::string& why)> fn) {
  absl::MutexLock l(&mu_);
  on_diverged_ = std::move(fn);
}

void EtcdStateStore::SetTerm(int64_t term) {
  absl::MutexLock l(&mu_);
  term_ = term;
}

int64_t EtcdStateStore::term() const {
  absl::MutexLock l(&mu_);
  return term_;
}

absl::StatusOr<LoadedState> EtcdStateStore::Load() {
  // One read-only transaction, so every range is at one revision: the objects,
  // the epoch, and of the event and audit batches only the newest key (the next
  // sequence number) — never the history, which PlanEvents/RecentAudit read.
  etcdserverpb::TxnRequest txn;
  auto range = [&txn](const std::string& key, const std::string& end) {
    etcdserverpb::RangeRequest* r = txn.add_success()->mutable_request_range();
    r->set_key(key);
    r->set_range_end(end);
    return r;
  };
  range(layout_.ObjectsPrefix(), EtcdLayout::RangeEnd(layout_.ObjectsPrefix()));
  range(layout_.EpochKey(), "");
  for (const std::string& p : {layout_.EventsPrefix(), layout_.AuditPrefix()}) {
    etcdserverpb::RangeRequest* r = range(p, EtcdLayout::RangeEnd(p));
    r->set_keys_only(true);
    r->set_sort_target(etcdserverpb::RangeRequest::KEY);
    r->set_sort_order(etcdserverpb::RangeRequest::DESCEND);
    r->set_limit(1);
  }
  MIROIR_ASSIGN_OR_RETURN(etcdserverpb::TxnResponse resp, client_->Txn(txn));
  if (resp.responses_size() != 4) {
    return absl::InternalError(
        absl::StrCat("etcd load: ", resp.responses_size(), " answers to 4 ranges"));
  }
  LoadedState out;
  std::map<std::string, Bucket> buckets;
  for (const auto& kv : resp.responses(0).response_range().kvs()) {
    MIROIR_ASSIGN_OR_RETURN(std::string kind, layout_.BucketKind(kv.key()));
    MIROIR_ASSIGN_OR_RETURN(BucketObjects objects, DecodeBucket(kv.value()));
    for (const auto& [id, value] : objects) out.objects[kind][id] = value;
    buckets[kv.key()] = Bucket{kv.mod_revision(), std::move(objects)};
  }
  int64_t epoch_rev = 0;
  for (const auto& kv : resp.responses(1).response_range().kvs()) {
    if (!absl::SimpleAtoi(kv.value(), &out.epoch)) {
      return absl::DataLossError(absl::StrCat("etcd key ", kv.key(), " is not an epoch"));
    }
    epoch_rev = kv.mod_revision();
  }
  uint64_t last_seq = 0;
  for (int i = 2; i < 4; ++i) {
    for (const auto& kv : resp.responses(i).response_range().kvs()) {
      MIROIR_ASSIGN_OR_RETURN(uint64_t seq, layout_.EventSeq(kv.key()));
      last_seq = std::max(last_seq, seq);
    }
  }
  absl::MutexLock l(&mu_);
  buckets_ = std::move(buckets);
  epoch_ = out.epoch;
  epoch_mod_revision_ = epoch_rev;
  next_event_seq_ = last_seq + 1;
  loaded_ = true;
  return out;
}

absl::Status EtcdStateStore::Commit(const StateWrite& write) {
  if (write.empty()) return absl::OkStatus();
  etcdserverpb::TxnRequest txn;
  std::map<std::string, Bucket> touched;
  uint64_t seq = 0;
  int64_t term = 0;
  {
    absl::MutexLock l(&mu_);
    term = term_;
    if (term == 0) {
      return absl::UnavailableError(
          "this coordinator is not the leader: its etcd store holds no leader term");
    }
    if (!loaded_) return absl::FailedPreconditionError("etcd state store: commit before Load");
    if (write.epoch.has_value() && *write.epoch <= epoch_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "epoch must be strictly newer than the stored one: ", epoch_, " -> ", *write.epoch));
    }
    AddCompare(&txn, layout_.LeaderKey(), Compare::CREATE, term);
    AddCompare(&txn, layout_.EpochKey(), Compare::MOD, epoch_mod_revision_);
    for (const auto& p : write.puts) {
      const std::string key = layout_.BucketKey(p.kind, p.id);
      auto it = touched.find(key);
      if (it == touched.end()) {
        auto cached = buckets_.find(key);
        it = touched.emplace(key, cached == buckets_.end() ? Bucket{} : cached->second).first;
      }
      if (p.value.has_value()) {
        it->second.objects[p.id] = *p.value;
      } else {
        it->second.objects.erase(p.id);
      }
    }
    seq = next_event_seq_;
  }
  int64_t bytes = 0;
  for (const auto& [key, bucket] : touched) {
    AddCompare(&txn, key, Compare::MOD, bucket.mod_revision);
    if (bucket.objects.empty()) {
      AddDelete(&txn, key);
    } else {
      std::string value = EncodeBucket(bucket.objects);
      bytes += static_cast<int64_t>(key.size() + value.size());
      AddPut(&txn, key, value);
    }
  }
  if (write.epoch.has_value()) AddPut(&txn, layout_.EpochKey(), std::to_string(*write.epoch));
  if (!write.events.empty()) {
    v1::EtcdEventBatch batch;
    for (const auto& e : write.events) {
      auto* ev = batch.add_events();
      ev->set_plan_id(e.plan_id);
      ev->set_value(e.value);
    }
    const std::string key = layout_.EventKey(seq);
    AddCompare(&txn, key, Compare::CREATE, 0);
    std::string value = batch.SerializeAsString();
    bytes += static_cast<int64_t>(key.size() + value.size());
    AddPut(&txn, key, value);
  }
  if (!write.audit.empty()) {
    v1::EtcdEventBatch batch;
    for (const std::string& a : write.audit) batch.add_events()->set_value(a);
    const std::string key = layout_.AuditKey(seq);
    AddCompare(&txn, key, Compare::CREATE, 0);
    std::string value = batch.SerializeAsString();
    bytes += static_cast<int64_t>(key.size() + value.size());
    AddPut(&txn, key, value);
  }
  // Refused before anything is written: a commit is never split.
  MIROIR_RETURN_IF_ERROR(CheckTxnFits(std::max(txn.compare_size(), txn.success_size()), bytes));

  absl::StatusOr<etcdserverpb::TxnResponse> answer = client_->Txn(txn);
  if (!answer.ok()) {
    // Maybe applied, maybe not: a later commit's compares tell.
    absl::MutexLock l(&mu_);
    unanswered_commit_ = true;
    return answer.status();
  }
  const etcdserverpb::TxnResponse& resp = *answer;
  if (!resp.succeeded()) {
    // Why: the term first (a deposed leader must hear it), then the rest.
    etcdserverpb::RangeRequest req;
    req.set_key(layout_.LeaderKey());
    auto leader = client_->Range(req);
    if (leader.ok()) {
      const bool ours = leader->kvs_size() == 1 && leader->kvs(0).create_revision() == term;
      if (!ours) {
        absl::MutexLock l(&mu_);
        if (term_ == term) term_ = 0;
        return absl::UnavailableError(absl::StrCat(
            "this coordinator is no longer the leader: its term ", term, " is over (leader now: ",
            leader->kvs_size() == 1 ? leader->kvs(0).value() : std::string("none"), ")"));
      }
      std::function<void(const std::string&)> diverged;
      std::string why;
      {
        absl::MutexLock l(&mu_);
        diverged = on_diverged_;
        why = absl::StrCat("the model in etcd changed under this leader (term ", term, ")",
                           unanswered_commit_ ? ": a commit whose answer was lost was applied"
                                              : " (epoch or bucket revision)");
      }
      if (diverged) diverged(why);
    }
    return absl::AbortedError(
        "the model in etcd changed under this coordinator (epoch or bucket revision); reload");
  }
  const int64_t rev = resp.header().revision();
  absl::MutexLock l(&mu_);
  unanswered_commit_ = false;
  for (auto& [key, bucket] : touched) {
    if (bucket.objects.empty()) {
      buckets_.erase(key);
    } else {
      bucket.mod_revision = rev;
      buckets_[key] = std::move(bucket);
    }
  }
  if (write.epoch.has_value()) {
    epoch_ = *write.epoch;
    epoch_mod_revision_ = rev;
  }
  if (!write.events.empty() || !write.audit.empty()) next_event_seq_ = seq + 1;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> EtcdStateStore::PlanEvents(uint64_t plan_id) {
  etcdserverpb::RangeRequest req;
  req.set_key(layout_.EventsPrefix());
  req.set_range_end(EtcdLayout::RangeEnd(layout_.EventsPrefix()));
  MIROIR_ASSIGN_OR_RETURN(etcdserverpb::RangeResponse resp, client_->Range(req));
  std::vector<std::string> out;
  for (const auto& kv : resp.kvs()) {  // keys sort by sequence number
    v1::EtcdEventBatch batch;
    if (!batch.ParseFromString(kv.value())) {
      return absl::DataLossError(absl::StrCat("etcd key ", kv.key(), " is not an event batch"));
    }
    for (const auto& e : batch.events()) {
      if (plan_id == 0 || e.plan_id() == plan_id) out.push_back(e.value());
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> EtcdStateStore::RecentAudit(int limit) {
  // Newest batches first; a batch holds one commit's records (usually one).
  etcdserverpb::RangeRequest req;
  req.set_key(layout_.AuditPrefix());
  req.set_range_end(EtcdLayout::RangeEnd(layout_.AuditPrefix()));
  req.set_sort_target(etcdserverpb::RangeRequest::KEY);
  req.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  req.set_limit(limit);
  // Read for a status only: bounded like the status' other etcd calls.
  MIROIR_ASSIGN_OR_RETURN(
      etcdserverpb::RangeResponse resp,
      client_->Range(req, std::min(client_->request_timeout(), kEtcdStatusProbe)));
  std::vector<std::string> out;
  for (const auto& kv : resp.kvs()) {
    v1::EtcdEventBatch batch;
    if (!batch.ParseFromString(kv.value())) {
      return absl::DataLossError(absl::StrCat("etcd key ", kv.key(), " is not an audit batch"));
    }
    for (int i = batch.events_size() - 1; i >= 0 && static_cast<int>(out.size()) < limit; --i) {
      out.push_back(batch.events(i).value());
    }
  }
  return out;
}

}  // namespace miroir::coordinator
