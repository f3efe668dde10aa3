#include "worker/write_path.h"

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/route_sets.h"
#include "worker/fan_out.h"
#include "worker/quorum.h"
#include "worker/view_change.h"
#include "worker/write_validation.h"

namespace miroir {

struct WritePath::Item {
  v1::WriteAck* ack = nullptr;
  std::string index;
  std::string pk;
  bool tombstone = false;
  std::string body;
  int64_t expires_at_ms = 0;
  uint64_t after_version = 0;
  Version version;
  uint64_t sent_version = 0;  // highest version sent (error acks carry it)
  bool stamped = false;
  int restamps = 0;
  bool holding = false;
  uint64_t pause_deadline_ms = 0;
};

namespace {

enum class TargetState { kApplied, kNewer, kFenced, kError };

struct Outcome {
  int target = 0;  // index into KeyRoute::targets
  std::string node;
  TargetState state = TargetState::kError;
  Version stored;
  uint64_t fence = 0;
};

// Where one mutation sits in a node request.
struct Slot {
  size_t item = 0;  // index into the round's work list
  int target = 0;
};

}  // namespace

// Where late answers of stragglers go: the HLC and the miss reports, while the
// WritePath lives (a pool thread may answer after it is gone).
struct WritePath::LateSink {
  absl::Mutex mu;
  bool alive ABSL_GUARDED_BY(mu) = true;
  HybridClock* hlc;
  CoordinatorLink* link;
  NodeHealth* health;

  void Answer(const NodeRequest& req, const NodeResult& r) {
    if (!r.ok()) return;  // already reported as a miss when it was not waited for
    absl::MutexLock l(&mu);
    if (!alive) return;
    for (size_t b = 0; b < r->size() && b < req.batches.size(); ++b) {
      const ShardKey& k = req.batches[b].shard;
      bool newer = false;
      for (const ApplyResult& a : (*r)[b]) {
        if (a.outcome != ApplyOutcome::kStoredIsNewer) continue;
        hlc->Observe(a.stored.hlc);
        health->counters().late_newer.fetch_add(1);
        newer = true;
      }
      // (Queued for the coordinator; no RPC under the lock.)
      if (newer) link->ReportMiss(req.node, k.index, k.generation, k.shard);
    }
  }
};

WritePath::WritePath(Router* router, NodeStores* stores, HybridClock* hlc, const Clock* clock,
                     ThreadPool* pool, InflightTracker* inflight, CoordinatorLink* link,
                     WritePathOptions options)
    : router_(router),
      stores_(stores),
      hlc_(hlc),
      clock_(clock),
      pool_(pool),
      inflight_(inflight),
      link_(link),
      options_(options),
      health_(std::make_shared<NodeHealth>(options.slow)),
      late_(std::make_shared<LateSink>()) {
  late_->hlc = hlc;
  late_->link = link;
  late_->health = health_.get();
}

WritePath::~WritePath() {
  absl::MutexLock l(&late_->mu);
  late_->alive = false;
}

absl::Time WritePath::RealTimeAt(int64_t clock_ms) const {
  return absl::Now() + absl::Milliseconds(std::max<int64_t>(0, clock_ms - clock_->NowMs()));
}

void WritePath::Finish(Item* item, absl::Status status) {
  if (item->holding) {
    item->holding = false;
    counters_.held.fetch_sub(1);
  }
  item->ack->set_code(static_cast<uint32_t>(status.code()));
  item->ack->set_error(std::string(status.message()));
  // The highest version sent for the item: a retry elsewhere stamps above it.
  item->ack->set_version(item->sent_version);
  counters_.acks_error.fetch_add(1);
}

void WritePath::Round(const RoutingSnapshot& snap, std::vector<Item*>* work,
                      std::vector<Item*>* held, uint64_t* refresh_epoch, int64_t deadline_ms) {
  std::vector<Item*> items = std::move(*work);
  work->clear();
  std::vector<KeyRoute> routes(items.size());
  std::vector<std::vector<Outcome>> outcomes(items.size());
  std::vector<bool> sent(items.size(), false);

  // Per node: the request and, per batch, the slot of each mutation.
  struct NodeWork {
    NodeRequest req;
    std::vector<std::vector<Slot>> slots;
    absl::flat_hash_map<std::string, size_t> batch_of_shard;
  };
  std::map<std::string, NodeWork> nodes;
  const int64_t now_ms = clock_->NowMs();

  for (size_t i = 0; i < items.size(); ++i) {
    Item* it = items[i];
    auto route = snap.Route(it->index, it->pk);
    if (!route.ok()) {
      Finish(it, route.status());
      continue;
    }
    if (route->paused) {
      if (route->pause_deadline_ms != 0 &&
          now_ms >= static_cast<int64_t>(route->pause_deadline_ms)) {
        Finish(it, absl::UnavailableError(
                       absl::StrCat("shard ", route->targets[route->live].shard, " of index '",
                                    route->index, "' stayed paused past its deadline; retry")));
        continue;
      }
      if (!it->holding) {
        if (counters_.held.load() >= options_.pause_queue_size) {
          Finish(it, absl::UnavailableError(
                         "pause queue full: too many writes held for paused shards; retry"));
          continue;
        }
        it->holding = true;
        counters_.held.fetch_add(1);
      }
      it->pause_deadline_ms = route->pause_deadline_ms;
      held->push_back(it);
      continue;
    }
    if (it->holding) {
      it->holding = false;
      counters_.held.fetch_sub(1);
    }
    if (!it->stamped) {
      it->version = hlc_->Next(it->after_version);
      it->stamped = true;
    }
    routes[i] = *std::move(route);
    sent[i] = true;
    it->sent_version = std::max(it->sent_version, it->version.hlc);
    Mutation m{it->pk, it->version, it->tombstone, it->body, it->expires_at_ms};
    for (int t = 0; t < static_cast<int>(routes[i].targets.size()); ++t) {
      const GenerationTarget& g = routes[i].targets[t];
      const std::string shard_key = ShardKeyName(g.index, g.generation, g.shard);
      absl::flat_hash_set<std::string> seen;
      for (const auto& grp : WriteSet(*g.route)) {
        for (const auto& node : grp.nodes()) {
          if (!seen.insert(node).second) continue;
          NodeWork& nw = nodes[node];
          if (nw.req.store == nullptr && nw.req.node.empty()) {
            nw.req.node = node;
            auto store = stores_->Get(snap, node);
            if (store.ok()) nw.req.store = *store;
          }
          if (nw.req.store == nullptr) {
            outcomes[i].push_back(Outcome{t, node, TargetState::kError, {}, 0});
            continue;
          }
          auto [bit, inserted] = nw.batch_of_shard.emplace(shard_key, nw.req.batches.size());
          if (inserted) {
            nw.req.batches.push_back(ShardMutations{ShardKey{g.index, g.generation, g.shard}, {}});
            nw.slots.emplace_back();
          }
          nw.req.batches[bit->second].muts.push_back(m);
          nw.slots[bit->second].push_back(Slot{i, t});
        }
      }
    }
  }

  // Fan out.
  std::vector<NodeRequest> requests;
  std::vector<NodeWork*> order;
  for (auto& [id, nw] : nodes) {
    if (nw.req.store == nullptr) continue;
    order.push_back(&nw);
    requests.push_back(nw.req);
  }
  size_t sent_count = 0;
  for (bool s : sent) sent_count += s ? 1 : 0;
  std::vector<NodeResult> results;
  if (!requests.empty()) {
    // The round counts its writes; each node's request carries its own shards, so a
    // shard's drain ends when the nodes holding it have answered (FanOutTolerant).
    InflightScope scope(inflight_, snap.epoch(), sent_count, {});
    // A suspected node is given up on only once every item has some group's
    // acking quorum among the nodes that answered: per item, per acking group,
    // the requests of its members.
    absl::flat_hash_map<std::string, int> request_of;
    for (size_t n = 0; n < order.size(); ++n) request_of[order[n]->req.node] = static_cast<int>(n);
    struct NeedQuorum {
      uint32_t need = 1;
      std::vector<std::vector<int>> groups;
    };
    std::vector<NeedQuorum> needs;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!sent[i]) continue;
      const GenerationTarget& live = routes[i].targets[routes[i].live];
      NeedQuorum nq;
      nq.need = GroupQuorum(live.rf);
      for (const auto& g : AckingSet(*live.route)) {
        if (g.nodes().empty()) continue;
        std::vector<int>& members = nq.groups.emplace_back();
        for (const auto& node : g.nodes()) {
          auto it = request_of.find(node);
          if (it != request_of.end()) members.push_back(it->second);
        }
      }
      needs.push_back(std::move(nq));
    }
    auto enough = [needs = std::move(needs)](const std::vector<bool>& ok) {
      for (const NeedQuorum& nq : needs) {
        bool some = false;
        for (const auto& members : nq.groups) {
          uint32_t got = 0;
          for (int r : members) got += ok[static_cast<size_t>(r)] ? 1 : 0;
          if (got >= nq.need) {
            some = true;
            break;
          }
        }
        if (!some) return false;
      }
      return true;
    };
    std::shared_ptr<LateSink> late = late_;
    results = FanOutTolerant(
        pool_, snap.epoch(), std::move(requests), RealTimeAt(deadline_ms), inflight_, health_,
        [late](const NodeRequest& req, const NodeResult& r) { late->Answer(req, r); },
        std::move(enough));
  }
  for (size_t n = 0; n < order.size(); ++n) {
    NodeWork& nw = *order[n];
    const NodeResult& r = results[n];
    for (size_t b = 0; b < nw.slots.size(); ++b) {
      for (size_t k = 0; k < nw.slots[b].size(); ++k) {
        const Slot& s = nw.slots[b][k];
        Outcome o{s.target, nw.req.node, TargetState::kError, {}, 0};
        if (r.ok() && b < r->size() && k < (*r)[b].size()) {
          const ApplyResult& a = (*r)[b][k];
          switch (a.outcome) {
            case ApplyOutcome::kApplied:
              o.state = TargetState::kApplied;
              break;
            case ApplyOutcome::kStoredIsNewer:
              o.state = TargetState::kNewer;
              o.stored = a.stored;
              break;
            case ApplyOutcome::kFenced:
              o.state = TargetState::kFenced;
              o.fence = a.fence;
              break;
          }
        }
        outcomes[s.item].push_back(std::move(o));
      }
    }
  }

  // Decide per item.
  for (size_t i = 0; i < items.size(); ++i) {
    if (!sent[i]) continue;
    Item* it = items[i];
    const KeyRoute& route = routes[i];
    uint64_t fence = 0;
    bool newer = false;
    Version newest;
    absl::flat_hash_set<std::string> applied_live;
    for (const Outcome& o : outcomes[i]) {
      if (o.state == TargetState::kFenced) fence = std::max(fence, std::max<uint64_t>(o.fence, 1));
      if (o.state == TargetState::kNewer) {
        newer = true;
        newest = std::max(newest, o.stored);
      }
      if (o.state == TargetState::kApplied && o.target == route.live) applied_live.insert(o.node);
    }
    if (fence > 0) {
      counters_.fenced_retries.fetch_add(1);
      *refresh_epoch = std::max(*refresh_epoch, fence);
      work->push_back(it);
      continue;
    }
    if (newer) {
      hlc_->Observe(newest.hlc);
      if (++it->restamps > options_.max_restamps) {
        Finish(it, absl::UnavailableError(absl::StrCat(
                       "pk '", it->pk, "': a replica kept answering a newer version after ",
                       options_.max_restamps, " re-stamps; retry")));
        continue;
      }
      counters_.restamps.fetch_add(1);
      it->version = hlc_->Next(std::max(it->after_version, newest.hlc));
      work->push_back(it);
      continue;
    }
    for (const Outcome& o : outcomes[i]) {
      if (o.state == TargetState::kError) {
        const GenerationTarget& g = route.targets[o.target];
        link_->ReportMiss(o.node, g.index, g.generation, g.shard);
      }
    }
    const GenerationTarget& live = route.targets[route.live];
    QuorumResult q = EvaluateQuorum(AckingSet(*live.route), live.rf, applied_live);
    if (!q.ok) {
      Finish(it, absl::UnavailableError(absl::StrCat(
                     "pk '", it->pk, "': no replica group reached its write quorum (shard ",
                     live.shard, ", epoch ", snap.epoch(), "); retry")));
      continue;
    }
    v1::WriteAck* ack = it->ack;
    ack->set_code(0);
    ack->set_version(it->version.hlc);
    ack->set_writer(it->version.writer);
    for (const auto& g : q.degraded_groups) ack->add_degraded_groups(g);
    ack->set_shard(live.shard);
    ack->set_epoch(snap.epoch());
    counters_.acks_ok.fetch_add(1);
    if (!q.degraded_groups.empty()) counters_.degraded.fetch_add(1);
  }
}

std::vector<v1::WriteAck> WritePath::Write(const std::vector<const v1::WriteItem*>& batch) {
  const int64_t deadline_ms = clock_->NowMs() + absl::ToInt64Milliseconds(options_.write_deadline);
  std::vector<v1::WriteAck> acks(batch.size());
  std::vector<Item> items(batch.size());
  std::vector<Item*> pending;
  counters_.writes.fetch_add(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    Item& it = items[i];
    it.ack = &acks[i];
    const v1::WriteItem& src = *batch[i];
    if (absl::Status s = ValidateWriteItem(src); !s.ok()) {
      Finish(&it, s);
      continue;
    }
    it.after_version = src.after_version();
    if (src.has_put()) {
      it.index = src.put().index();
      it.pk = src.put().pk();
      it.body = src.put().body();
      it.expires_at_ms = src.put().expires_at_ms();
    } else {
      it.index = src.delete_().index();
      it.pk = src.delete_().pk();
      it.tombstone = true;
    }
    pending.push_back(&it);
  }
  if (!pending.empty() && !link_->LeaseValid()) {
    for (Item* it : pending) {
      Finish(it, absl::UnavailableError(
                     "worker has no valid lease from the coordinator; retry on another worker"));
    }
    return acks;
  }
  // (The lease is checked again before every routing round below.)
  std::vector<Item*> held;
  while (!pending.empty() || !held.empty()) {
    if (clock_->NowMs() >= deadline_ms) {
      for (Item* it : pending) {
        Finish(it, absl::UnavailableError(absl::StrCat(
                       "write deadline of ", absl::FormatDuration(options_.write_deadline),
                       " passed before the write was acknowledged; retry")));
      }
      for (Item* it : held) {
        Finish(it, absl::UnavailableError("shard paused past the write deadline; retry"));
      }
      break;
    }
    if (!link_->LeaseValid()) {
      // The lease lapsed mid-write (e.g. the process was stopped): stop routing;
      // the coordinator may already have moved on without this worker.
      for (Item* it : pending) {
        Finish(it, absl::UnavailableError("worker lease expired during the write; retry"));
      }
      for (Item* it : held) {
        Finish(it, absl::UnavailableError("worker lease expired during the write; retry"));
      }
      break;
    }
    auto snap = router_->Current();
    if (snap->epoch() == 0) {
      router_->WaitForNewer(0, RealTimeAt(deadline_ms));
      continue;
    }
    pending.insert(pending.end(), held.begin(), held.end());
    held.clear();
    uint64_t refresh = 0;
    Round(*snap, &pending, &held, &refresh, deadline_ms);
    if (refresh > 0) {
      link_->RefreshView(refresh);
      if (router_->epoch() <= snap->epoch()) {
        router_->WaitForNewer(
            snap->epoch(), std::min(RealTimeAt(deadline_ms), absl::Now() + absl::Milliseconds(50)));
      }
    } else if (pending.empty() && !held.empty()) {
      int64_t until_ms = deadline_ms;
      for (Item* it : held) {
        if (it->pause_deadline_ms != 0) {
          until_ms = std::min(until_ms, static_cast<int64_t>(it->pause_deadline_ms));
        }
      }
      router_->WaitForNewer(snap->epoch(), RealTimeAt(until_ms));
    }
  }
  return acks;
}

}  // namespace miroir
