#include "miroir/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/client_channel.h"
#include "common/version.h"
#include "miroir/v1/dataplane.grpc.pb.h"
#include "worker/write_validation.h"

namespace miroir::client {

namespace pb = ::miroir::v1;

Mutation Mutation::Put(std::string index, std::string pk, std::string body, int64_t expires_at_ms) {
  Mutation m;
  m.kind = Kind::kPut;
  m.index = std::move(index);
  m.pk = std::move(pk);
  m.body = std::move(body);
  m.expires_at_ms = expires_at_ms;
  return m;
}

Mutation Mutation::Delete(std::string index, std::string pk) {
  Mutation m;
  m.kind = Kind::kDelete;
  m.index = std::move(index);
  m.pk = std::move(pk);
  return m;
}

// ---- pure decisions ----------------------------------------------------------

Disposition ClassifyWriteAck(int code) {
  switch (static_cast<grpc::StatusCode>(code)) {
    case grpc::StatusCode::OK:
      return Disposition::kDone;
    case grpc::StatusCode::UNAVAILABLE:         // no quorum, fenced re-route out of time
    case grpc::StatusCode::ABORTED:             // a conflict the worker gave up on
    case grpc::StatusCode::DEADLINE_EXCEEDED:   // the worker's write deadline passed
    case grpc::StatusCode::RESOURCE_EXHAUSTED:  // back-pressure from the worker
      return Disposition::kRetry;
    default:
      return Disposition::kFinal;
  }
}

Disposition ClassifyCall(absl::StatusCode code, bool read) {
  switch (code) {
    case absl::StatusCode::kOk:
      return Disposition::kDone;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
      return Disposition::kRetry;
    case absl::StatusCode::kFailedPrecondition:
      return read ? Disposition::kRetry : Disposition::kFinal;
    default:
      return Disposition::kFinal;
  }
}

absl::Duration Backoff(int retry, absl::Duration initial, absl::Duration max, double jitter01) {
  if (retry < 1) return absl::ZeroDuration();
  absl::Duration d = initial;
  for (int i = 1; i < retry && d < max; ++i) d *= 2;
  d = std::min(d, max);
  jitter01 = std::clamp(jitter01, 0.0, 1.0);
  return d - d * (jitter01 / 2);
}

absl::Status ValidateMutation(const Mutation& m) {
  pb::WriteItem item;
  if (m.kind == Mutation::Kind::kPut) {
    auto* p = item.mutable_put();
    p->set_index(m.index);
    p->set_pk(m.pk);
    p->set_body(m.body);
    p->set_expires_at_ms(m.expires_at_ms);
  } else {
    auto* d = item.mutable_delete_();
    d->set_index(m.index);
    d->set_pk(m.pk);
  }
  return ValidateWriteItem(item);  // the worker's rules, one copy
}

namespace {

absl::Status FromGrpcStatus(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

std::string KeyOf(const std::string& index, const std::string& pk) {
  return absl::StrCat(index.size(), ":", index, pk);
}

absl::Status ValidateOptions(const ClientOptions& o) {
  if (o.workers.empty()) return absl::InvalidArgumentError("workers: at least one HOST:PORT");
  for (const auto& w : o.workers) {
    if (w.empty()) return absl::InvalidArgumentError("workers: an address is empty");
  }
  if (o.call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("call_timeout: must be positive");
  }
  if (o.max_attempts < 1) return absl::InvalidArgumentError("max_attempts: must be >= 1");
  if (o.initial_backoff < absl::ZeroDuration() || o.max_backoff < o.initial_backoff) {
    return absl::InvalidArgumentError("max_backoff: must be >= initial_backoff >= 0");
  }
  if (o.max_batch_items < 1 || o.max_batch_items > 10000) {
    return absl::InvalidArgumentError("max_batch_items: must be in 1..10000");
  }
  if (o.max_batches_in_flight < 1) {
    return absl::InvalidArgumentError("max_batches_in_flight: must be >= 1");
  }
  if (o.clock_skew_allowance < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("clock_skew_allowance: must not be negative");
  }
  return absl::OkStatus();
}

}  // namespace

// ---- Client ------------------------------------------------------------------

struct Client::Impl {
  ClientOptions options;
  std::vector<std::unique_ptr<pb::DataPlane::Stub>> stubs;  // one per worker
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::StatusOr<std::shared_ptr<Client>> Client::Create(ClientOptions options) {
  if (auto s = ValidateOptions(options); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  for (const auto& w : options.workers)
    impl->stubs.push_back(pb::DataPlane::NewStub(NewClientChannel(w)));
  impl->options = std::move(options);
  return std::shared_ptr<Client>(new Client(std::move(impl)));
}

const ClientOptions& Client::options() const { return impl_->options; }

// ---- Session -----------------------------------------------------------------

struct Session::Impl {
  std::shared_ptr<Client::Impl> client;

  struct KeyState {
    uint64_t acked = 0;  // last acknowledged version (the read token)
    uint64_t after = 0;  // what the next write passes (>= acked)
  };
  mutable absl::Mutex mu;
  std::map<std::string, KeyState> keys ABSL_GUARDED_BY(mu);
  size_t current ABSL_GUARDED_BY(mu) = 0;
  std::mt19937_64 rng ABSL_GUARDED_BY(mu) = std::mt19937_64(std::random_device{}());

  const ClientOptions& opts() const { return client->options; }

  size_t Current() const {
    absl::MutexLock l(&mu);
    return current;
  }
  // The worker `failed` failed: move on, unless another call already did.
  void FailOver(size_t failed) {
    absl::MutexLock l(&mu);
    if (current == failed) current = (current + 1) % client->stubs.size();
  }
  void PauseBeforeRetry(int retry) {
    double j;
    {
      absl::MutexLock l(&mu);
      j = std::uniform_real_distribution<double>(0, 1)(rng);
    }
    absl::SleepFor(Backoff(retry, opts().initial_backoff, opts().max_backoff, j));
  }
  uint64_t After(const std::string& key) const {
    absl::MutexLock l(&mu);
    auto it = keys.find(key);
    return it == keys.end() ? 0 : it->second.after;
  }
  uint64_t Acked(const std::string& key) const {
    absl::MutexLock l(&mu);
    auto it = keys.find(key);
    return it == keys.end() ? 0 : it->second.acked;
  }
  void Acknowledged(const std::string& key, uint64_t version) {
    absl::MutexLock l(&mu);
    KeyState& k = keys[key];
    k.acked = std::max(k.acked, version);
    k.after = std::max(k.after, version);
  }
  // A failed attempt may still land at `version` (or below): stamp later ones above.
  void RaiseAfter(const std::string& key, uint64_t version) {
    absl::MutexLock l(&mu);
    KeyState& k = keys[key];
    k.after = std::max(k.after, version);
  }

  // One attempt of `items` (indexes into mutations) through worker `w`. Fills
  // results; returns the items to retry. *transport_failed when the stream broke.
  std::vector<size_t> SendRound(size_t w, const std::vector<Mutation>& mutations,
                                const std::vector<std::string>& keys_of,
                                const std::vector<size_t>& items, std::vector<WriteResult>* results,
                                bool* transport_failed);
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

std::unique_ptr<Session> Client::NewSession() {
  auto impl = std::make_unique<Session::Impl>();
  impl->client = impl_;
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

std::vector<size_t> Session::Impl::SendRound(size_t w, const std::vector<Mutation>& mutations,
                                             const std::vector<std::string>& keys_of,
                                             const std::vector<size_t>& items,
                                             std::vector<WriteResult>* results,
                                             bool* transport_failed) {
  const ClientOptions& o = opts();
  const std::string& address = o.workers[w];
  const size_t per = static_cast<size_t>(o.max_batch_items);
  const size_t nb = (items.size() + per - 1) / per;
  auto batch_items = [&](size_t b) {
    return std::make_pair(b * per, std::min(items.size(), (b + 1) * per));
  };

  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + o.call_timeout * static_cast<double>(nb)));
  auto stream = client->stubs[w]->Write(&ctx);
  std::vector<size_t> retry;
  size_t built = 0, sent = 0, acked = 0;  // batches built, written, acknowledged
  bool broken = false;
  while (acked < nb && !broken) {
    // Keep up to max_batches_in_flight batches unacknowledged (back-pressure:
    // the worker reads a bounded queue, flow control holds the rest).
    while (sent < nb && sent - acked < static_cast<size_t>(o.max_batches_in_flight)) {
      pb::WriteBatch batch;
      batch.set_batch_id(sent);
      built = sent + 1;
      auto [from, to] = batch_items(sent);
      for (size_t j = from; j < to; ++j) {
        const Mutation& m = mutations[items[j]];
        pb::WriteItem* it = batch.add_items();
        if (m.kind == Mutation::Kind::kPut) {
          it->mutable_put()->set_index(m.index);
          it->mutable_put()->set_pk(m.pk);
          it->mutable_put()->set_body(m.body);
          it->mutable_put()->set_expires_at_ms(m.expires_at_ms);
        } else {
          it->mutable_delete_()->set_index(m.index);
          it->mutable_delete_()->set_pk(m.pk);
        }
        it->set_after_version(After(keys_of[items[j]]));
        (*results)[items[j]].attempts += 1;
        (*results)[items[j]].worker = address;
      }
      if (!stream->Write(batch)) {
        broken = true;
        break;
      }
      ++sent;
    }
    if (broken) break;
    pb::WriteAcks acks;
    if (!stream->Read(&acks)) {
      broken = true;
      break;
    }
    auto [from, to] = batch_items(acked);
    if (acks.batch_id() != acked || static_cast<size_t>(acks.acks_size()) != to - from) {
      ctx.TryCancel();  // not the protocol: treat like a broken stream
      broken = true;
      break;
    }
    for (size_t j = from; j < to; ++j) {
      const size_t i = items[j];
      const pb::WriteAck& ack = acks.acks(static_cast<int>(j - from));
      WriteResult& r = (*results)[i];
      switch (ClassifyWriteAck(static_cast<int>(ack.code()))) {
        case Disposition::kDone:
          r.status = absl::OkStatus();
          r.version = ack.version();
          r.writer = ack.writer();
          r.degraded_groups.assign(ack.degraded_groups().begin(), ack.degraded_groups().end());
          r.shard = ack.shard();
          r.epoch = ack.epoch();
          Acknowledged(keys_of[i], ack.version());
          break;
        case Disposition::kRetry:
          r.status = absl::Status(static_cast<absl::StatusCode>(ack.code()), ack.error());
          RaiseAfter(keys_of[i], ack.version());
          retry.push_back(i);
          break;
        case Disposition::kFinal:
          r.status = absl::Status(static_cast<absl::StatusCode>(ack.code()), ack.error());
          RaiseAfter(keys_of[i], ack.version());
          break;
      }
    }
    ++acked;
  }
  if (!broken) {
    stream->WritesDone();
    grpc::Status fin = stream->Finish();
    (void)fin;  // every item has its ack
    *transport_failed = false;
    return retry;
  }
  absl::Status st = FromGrpcStatus(stream->Finish());
  if (st.ok()) st = absl::UnavailableError("stream ended before every batch was acknowledged");
  *transport_failed = true;
  const bool again = ClassifyCall(st.code(), /*read=*/false) == Disposition::kRetry;
  // Sent without an ack: outcome and version unknown; stamp later attempts
  // above anything the worker could have stamped (its clock within the allowance).
  const uint64_t unknown_floor =
      Version::Pack(absl::ToUnixMillis(absl::Now() + o.clock_skew_allowance), 0);
  for (size_t b = acked; b < nb; ++b) {
    auto [from, to] = batch_items(b);
    for (size_t j = from; j < to; ++j) {
      const size_t i = items[j];
      WriteResult& r = (*results)[i];
      if (b < built) {
        RaiseAfter(keys_of[i], unknown_floor);
        r.status = absl::Status(st.code(), absl::StrCat("outcome unknown: stream to worker ",
                                                        address, " failed: ", st.message()));
      } else {
        r.status = absl::Status(st.code(), absl::StrCat("not sent: stream to worker ", address,
                                                        " failed: ", st.message()));
      }
      if (again) retry.push_back(i);
    }
  }
  return retry;
}

std::vector<WriteResult> Session::Write(const std::vector<Mutation>& mutations) {
  std::vector<WriteResult> results(mutations.size());
  std::vector<std::string> keys_of(mutations.size());
  std::vector<size_t> pending;
  std::set<std::string> seen;
  for (size_t i = 0; i < mutations.size(); ++i) {
    const Mutation& m = mutations[i];
    if (absl::Status s = ValidateMutation(m); !s.ok()) {
      results[i].status = s;
      continue;
    }
    keys_of[i] = KeyOf(m.index, m.pk);
    if (!seen.insert(keys_of[i]).second) {
      results[i].status = absl::InvalidArgumentError(
          absl::StrCat("pk: '", m.pk, "' appears more than once in one Write (operations on a ",
                       "key must be sequential: write it again after this call)"));
      continue;
    }
    pending.push_back(i);
  }
  for (int attempt = 1; attempt <= impl_->opts().max_attempts && !pending.empty(); ++attempt) {
    if (attempt > 1) impl_->PauseBeforeRetry(attempt - 1);
    const size_t w = impl_->Current();
    bool transport_failed = false;
    pending = impl_->SendRound(w, mutations, keys_of, pending, &results, &transport_failed);
    if (transport_failed) impl_->FailOver(w);
  }
  return results;
}

absl::StatusOr<WriteResult> Session::Put(const std::string& index, const std::string& pk,
                                         const std::string& body, int64_t expires_at_ms) {
  auto r = Write({Mutation::Put(index, pk, body, expires_at_ms)});
  if (!r[0].status.ok()) return r[0].status;
  return std::move(r[0]);
}

absl::StatusOr<WriteResult> Session::Delete(const std::string& index, const std::string& pk) {
  auto r = Write({Mutation::Delete(index, pk)});
  if (!r[0].status.ok()) return r[0].status;
  return std::move(r[0]);
}

absl::StatusOr<ReadResult> Session::Get(const std::string& index, const std::string& pk) {
  if (index.empty()) return absl::InvalidArgumentError("index: must not be empty");
  if (absl::Status s = ValidatePk(pk); !s.ok()) return s;
  const std::string key = KeyOf(index, pk);
  const ClientOptions& o = impl_->opts();
  absl::Status last;
  for (int attempt = 1; attempt <= o.max_attempts; ++attempt) {
    if (attempt > 1) impl_->PauseBeforeRetry(attempt - 1);
    const size_t w = impl_->Current();
    pb::GetRequest req;
    req.set_index(index);
    req.set_pk(pk);
    req.set_after_version(impl_->Acked(key));
    pb::GetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + o.call_timeout));
    last = FromGrpcStatus(impl_->client->stubs[w]->Get(&ctx, req, &resp));
    if (last.ok()) {
      ReadResult r;
      r.found = resp.found();
      r.version = resp.document().version();
      r.writer = resp.document().writer();
      r.node = resp.node();
      r.worker = o.workers[w];
      if (r.found) {
        r.body = resp.document().body();
        r.expires_at_ms = resp.document().expires_at_ms();
      }
      // Monotonic reads: a later read or write of the key is at or above this one.
      if (r.version > 0) impl_->Acknowledged(key, r.version);
      return r;
    }
    if (ClassifyCall(last.code(), /*read=*/true) != Disposition::kRetry) return last;
    if (last.code() != absl::StatusCode::kFailedPrecondition) impl_->FailOver(w);
  }
  return last;
}

uint64_t Session::AckedVersion(const std::string& index, const std::string& pk) const {
  return impl_->Acked(KeyOf(index, pk));
}

uint64_t Session::AfterVersion(const std::string& index, const std::string& pk) const {
  return impl_->After(KeyOf(index, pk));
}

std::string Session::CurrentWorker() const { return impl_->opts().workers[impl_->Current()]; }

}  // namespace miroir::client
