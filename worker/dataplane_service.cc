#include "worker/dataplane_service.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "worker/fan_out.h"
#include "worker/read_set.h"
#include "worker/write_validation.h"

namespace miroir {
namespace {

// A bounded FIFO between the stream's reader thread and its handler thread.
class BatchQueue {
 public:
  explicit BatchQueue(size_t cap) : cap_(cap) {}
  // Blocks while full. False once closed.
  bool Push(v1::WriteBatch b) {
    absl::MutexLock l(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || q_.size() < cap_; };
    mu_.Await(absl::Condition(&room));
    if (closed_) return false;
    q_.push_back(std::move(b));
    return true;
  }
  // Blocks while empty and open. nullopt once closed and drained.
  std::optional<v1::WriteBatch> Pop() {
    absl::MutexLock l(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !q_.empty(); };
    mu_.Await(absl::Condition(&ready));
    if (q_.empty()) return std::nullopt;
    v1::WriteBatch b = std::move(q_.front());
    q_.pop_front();
    return b;
  }
  void Close() {
    absl::MutexLock l(&mu_);
    closed_ = true;
  }

 private:
  const size_t cap_;
  absl::Mutex mu_;
  std::deque<v1::WriteBatch> q_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

using NodeRead = absl::StatusOr<std::optional<StoredDoc>>;

// One node's point read, on the pool, waited for at most the read timeout; a
// suspected node is not asked (another read-set member answers) and a node that
// does not answer in time counts a timeout (NodeHealth) and is passed over.
NodeRead ReadWithin(ThreadPool* pool, const std::shared_ptr<NodeHealth>& health,
                    const std::string& node, std::shared_ptr<StoreAdapter> store,
                    const ShardKey& key, uint64_t epoch, const std::string& pk) {
  if (health->Suspected(node)) {
    MaybeProbe(pool, health, node, store);
    return absl::UnavailableError(absl::StrCat("node ", node, " is suspected slow"));
  }
  struct State {
    absl::Mutex mu;
    std::optional<NodeRead> result ABSL_GUARDED_BY(mu);
  };
  auto state = std::make_shared<State>();
  const absl::Time start = absl::Now();
  pool->Submit([state, store, key, epoch, pk, health, node, start] {
    NodeRead r;
    auto doc = store->Get(key, epoch, pk);
    if (doc.ok()) {
      r = std::optional<StoredDoc>(std::move(*doc));
    } else if (doc.status().code() == absl::StatusCode::kNotFound) {
      r = std::optional<StoredDoc>();
    } else {
      r = doc.status();
    }
    // Unanswered for suspect_timeout (a stopped node answers at the store's op
    // timeout): one timeout of the node. Counted here, not at read_node_timeout,
    // so a read passing over a busy node does not make it suspected.
    if (absl::Now() - start >= health->options().suspect_timeout) {
      health->RecordTimeout(node, absl::Now());
    }
    absl::MutexLock l(&state->mu);
    state->result = std::move(r);
  });
  const SlowNodeOptions& opt = health->options();
  absl::MutexLock l(&state->mu);
  auto done = [&state]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->result.has_value(); };
  if (state->mu.AwaitWithDeadline(absl::Condition(&done), start + opt.read_node_timeout)) {
    if (state->result->ok() && absl::Now() - start < opt.suspect_timeout) {
      health->RecordAnswer(node);
    }
    return *std::move(state->result);
  }
  health->counters().read_timeouts.fetch_add(1);
  return absl::DeadlineExceededError(
      absl::StrCat("node ", node, " did not answer the read within read_node_timeout"));
}

}  // namespace

void ToProto(const StoredDoc& d, v1::Document* out) {
  out->set_pk(d.pk);
  out->set_body(d.body);
  out->set_version(d.version.hlc);
  out->set_writer(d.version.writer);
  out->set_tombstone(d.tombstone);
  out->set_expires_at_ms(d.expires_at_ms);
}

grpc::Status DataPlaneService::Write(
    grpc::ServerContext* ctx, grpc::ServerReaderWriter<v1::WriteAcks, v1::WriteBatch>* stream) {
  // One batch is being executed while up to max_batches_in_flight_-1 wait.
  BatchQueue queue(static_cast<size_t>(std::max(1, max_batches_in_flight_ - 1)));
  std::thread reader([&] {
    v1::WriteBatch b;
    while (stream->Read(&b)) {
      if (!queue.Push(std::move(b))) break;
      b.Clear();
    }
    queue.Close();
  });
  bool write_failed = false;
  while (auto batch = queue.Pop()) {
    std::vector<const v1::WriteItem*> items;
    items.reserve(batch->items_size());
    for (const auto& it : batch->items()) items.push_back(&it);
    std::vector<v1::WriteAck> acks = writes_->Write(items);
    v1::WriteAcks out;
    out.set_batch_id(batch->batch_id());
    for (auto& a : acks) *out.add_acks() = std::move(a);
    if (!stream->Write(out)) {
      write_failed = true;
      break;
    }
  }
  if (write_failed) ctx->TryCancel();
  queue.Close();
  reader.join();
  return grpc::Status::OK;
}

grpc::Status DataPlaneService::Get(grpc::ServerContext* ctx, const v1::GetRequest* req,
                                   v1::GetResponse* resp) {
  if (req->index().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "index: must not be empty");
  }
  if (absl::Status s = ValidatePk(req->pk()); !s.ok()) return ToGrpc(s);
  constexpr int kAttempts = 3;
  ReadOutcome read;
  bool whole_shard = false;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto snap = router_->Current();
    if (snap->epoch() == 0) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker has no routing table yet; retry");
    }
    auto route = snap->Route(req->index(), req->pk());
    if (!route.ok()) return ToGrpc(route.status());
    const GenerationTarget& live = route->targets[route->live];
    const ShardKey key{live.index, live.generation, live.shard};
    auto failed = [&](const std::string& n) {
      const v1::Node* node = snap->Node(n);
      return node != nullptr && node->status() == v1::NODE_FAILED;
    };
    std::vector<GroupReadSet> groups = ReadSetOf(*live.route, failed, [&](const std::string& n) {
      return exclusions_ != nullptr && exclusions_->Excluded(n, key.generation, key.shard);
    });
    // Groups with a suspected (slow or stopped) member are asked last: a group
    // without one makes its quorum without a detour.
    std::stable_partition(groups.begin(), groups.end(), [&](const GroupReadSet& g) {
      return std::none_of(g.nodes.begin(), g.nodes.end(),
                          [&](const std::string& n) { return writes_->health()->Suspected(n); });
    });
    uint32_t rf = live.rf;
    whole_shard = groups.empty();
    if (whole_shard) {
      // Every read-set node has a pending pass (a shard pass): all of them, as one.
      groups = {WholeShardReadSet(*live.route, failed)};
      rf = static_cast<uint32_t>(2 * groups[0].nodes.size());
      if (groups[0].nodes.empty()) groups.clear();
    }
    read = QuorumRead(groups, rf, req->after_version(), [&](const std::string& n) -> NodeRead {
      auto store = stores_->Get(*snap, n);
      if (!store.ok()) return store.status();
      return ReadWithin(writes_->pool(), writes_->health(), n, *store, key, snap->epoch(),
                        req->pk());
    });
    // A fenced node: the epoch moved on; refresh and read again (a group's quorum
    // at this epoch still answers, as it would have an instant earlier).
    if (read.kind == ReadOutcome::Kind::kQuorum || !read.fenced || attempt + 1 == kAttempts) {
      break;
    }
    link_->RefreshView(snap->epoch() + 1);
    router_->WaitForNewer(snap->epoch(), absl::Now() + absl::Milliseconds(100));
  }
  // Across the whole shard only every node's answer is one (WholeShardReadSet).
  if (whole_shard && read.kind == ReadOutcome::Kind::kPartial) read.kind = ReadOutcome::Kind::kNone;
  switch (read.kind) {
    case ReadOutcome::Kind::kQuorum:
    case ReadOutcome::Kind::kPartial: {
      const std::optional<StoredDoc>& doc = read.answer.doc;
      resp->set_found(doc && IsLiveDoc(*doc, writes_->clock()->NowMs()));
      if (doc) {
        ToProto(*doc, resp->mutable_document());
      } else {
        resp->mutable_document()->set_pk(req->pk());
      }
      resp->set_node(read.answer.node);
      return grpc::Status::OK;
    }
    case ReadOutcome::Kind::kStale:
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("after_version: no read set of pk '", req->pk(),
                                       "' holds version ", req->after_version(), " or newer yet"));
    case ReadOutcome::Kind::kNone:
      break;
  }
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat("no node of the read set of pk '",
                                                                  req->pk(), "' answered; retry"));
}

grpc::Status DataPlaneService::ReadShard(grpc::ServerContext* ctx, const v1::ReadShardRequest* req,
                                         v1::ReadShardResponse* resp) {
  auto snap = router_->Current();
  if (req->node().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "node: must not be empty");
  }
  auto index = snap->ResolveIndex(req->index());
  if (!index.ok()) return ToGrpc(index.status());
  const v1::GenerationRoute* gen = snap->Generation(*index, req->generation());
  if (gen == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("generation: index '", *index, "' has no generation ",
                                     req->generation(), " in epoch ", snap->epoch()));
  }
  if (req->shard() >= gen->shards()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("shard: ", req->shard(), " is not below S=", gen->shards()));
  }
  auto store = stores_->Get(*snap, req->node());
  if (!store.ok()) return ToGrpc(store.status());
  const ShardKey key{*index, gen->generation(), req->shard()};
  const uint32_t limit = req->limit() == 0 ? 1000 : std::min<uint32_t>(req->limit(), 10000);
  auto docs = (*store)->Scan(key, kAnyEpoch, req->after_pk(), limit);
  if (!docs.ok()) return ToGrpc(docs.status());
  for (const auto& d : *docs) ToProto(d, resp->add_documents());
  resp->set_done(docs->size() < limit);
  auto seq = (*store)->CurrentSeq(key);
  if (!seq.ok()) return ToGrpc(seq.status());
  resp->set_incarnation(seq->incarnation);
  resp->set_change_seq(seq->seq);
  auto fence = (*store)->GetFence(key);
  if (!fence.ok()) return ToGrpc(fence.status());
  resp->set_fence(*fence);
  return grpc::Status::OK;
}

}  // namespace miroir
