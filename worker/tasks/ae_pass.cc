#include "worker/tasks/ae_pass.h"

#include <algorithm>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/status_macros.h"
#include "worker/tasks/ae_logic.h"
#include "worker/tasks/merged_scan.h"

namespace miroir {
namespace {

constexpr size_t kMaxDivergentKeys = 100;
constexpr uint32_t kDefaultPage = 1000;

absl::Status Prefixed(const std::string& node, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(node, ": ", s.message()));
}

// What step 1 learns from one replica.
struct ReplicaScan {
  absl::Status status;
  std::optional<BucketDigests> buckets;
  ShardDigest digest;
};

void ScanReplica(const Replica& r, const ShardKey& shard, uint64_t epoch, uint32_t page,
                 uint32_t buckets, int64_t now_ms, const std::function<bool()>& cancelled,
                 const std::function<void()>& yield, ReplicaScan* out) {
  out->buckets.emplace(buckets);
  std::string after;
  while (true) {
    if (cancelled && cancelled()) {
      out->status = absl::CancelledError("task stopped");
      return;
    }
    auto docs = r.store->Scan(shard, epoch, after, page);
    if (!docs.ok()) {
      out->status = Prefixed(r.node, docs.status());
      return;
    }
    for (const auto& d : *docs) {
      out->buckets->Add(d, now_ms);
      out->digest.Add(d.pk, d.version.hlc, d.version.writer, d.tombstone, d.body);
    }
    // An empty page ends the scan (a short page may only mean an entry vanished).
    if (docs->empty()) return;
    after = docs->back().pk;
    if (yield) yield();
  }
}

Mutation RepairOf(const StoredDoc& truth, bool overwrite_same_version) {
  Mutation m{truth.pk, truth.version, truth.tombstone, truth.tombstone ? "" : truth.body,
             truth.tombstone ? 0 : truth.expires_at_ms};
  m.overwrite_same_version = overwrite_same_version;
  return m;
}

absl::Status ApplyRepairs(const Replica& r, const ShardKey& shard, uint64_t epoch,
                          const std::vector<Mutation>& muts) {
  if (muts.empty()) return absl::OkStatus();
  auto res = r.store->Apply(shard, epoch, muts);
  if (!res.ok()) return Prefixed(r.node, res.status());
  for (const auto& a : *res) {
    if (a.outcome == ApplyOutcome::kFenced) {
      return absl::FailedPreconditionError(
          absl::StrCat(r.node, ": fenced at epoch ", a.fence, ", above the task's epoch ", epoch));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::TaskResult> RunAePass(const TaskContext& ctx, const Clock* clock) {
  const v1::Task& t = ctx.task;
  const ShardKey shard{t.index(), t.generation(), t.shard()};
  std::vector<Replica> replicas;
  absl::flat_hash_set<std::string> seen;
  for (const auto* ids : {&t.sources(), &t.targets()}) {
    for (const auto& id : *ids) {
      if (!seen.insert(id).second) continue;
      auto s = ctx.store(id);
      if (!s.ok()) return Prefixed(id, s.status());
      replicas.push_back(Replica{id, *s});
    }
  }
  if (replicas.empty()) return absl::InvalidArgumentError("sources: an AE pass needs replicas");
  const uint32_t page = t.batch_size() == 0 ? kDefaultPage : t.batch_size();
  const uint32_t nbuckets = t.ae_buckets() == 0 ? kDefaultAeBuckets : t.ae_buckets();
  const int64_t start_ms = clock->NowMs();
  // A purge is destructive: a re-leased pass that purges carries an epoch
  // committed after its previous lease and first raises the replicas' fence to
  // it, so what a stale holder of the earlier lease still sends is refused
  // (DESIGN §6).
  if (t.repair() && t.purge_tombstones_before_ms() > 0 && t.lease_generation() > 1) {
    for (const auto& r : replicas) {
      if (auto f = r.store->SetFence(shard, t.epoch()); !f.ok()) {
        return Prefixed(r.node, f.status());
      }
    }
  }

  // Each replica's position at the start: a repairing pass that completes makes
  // it that node's sync point for the shard (DESIGN §6, Node rejoin).
  std::vector<v1::Watermark> starts;
  for (const auto& r : replicas) {
    auto pos = r.store->CurrentSeq(shard);
    if (!pos.ok()) return Prefixed(r.node, pos.status());
    v1::Watermark w;
    w.set_node(r.node);
    w.set_incarnation(pos->incarnation);
    w.set_seq(pos->seq);
    starts.push_back(std::move(w));
  }

  // Step 1: one scan per replica, in parallel.
  std::vector<ReplicaScan> scans(replicas.size());
  {
    std::vector<std::thread> readers;
    for (size_t i = 0; i < replicas.size(); ++i) {
      readers.emplace_back(ScanReplica, std::cref(replicas[i]), std::cref(shard), t.epoch(), page,
                           nbuckets, start_ms, std::cref(ctx.cancelled), std::cref(ctx.yield),
                           &scans[i]);
    }
    for (auto& th : readers) th.join();
  }
  v1::TaskResult res;
  std::vector<BucketDigests> digests;
  for (auto& s : scans) {
    if (!s.status.ok()) return s.status;
    digests.push_back(*std::move(s.buckets));
  }
  res.set_replicas_reached(replicas.size());
  for (auto& w : starts) *res.add_watermarks() = std::move(w);
  for (size_t i = 0; i < replicas.size(); ++i) {
    auto* d = res.add_digests();
    d->set_node(replicas[i].node);
    d->set_documents(scans[i].digest.documents());
    d->set_tombstones(scans[i].digest.tombstones());
    d->set_digest(scans[i].digest.Hex());
  }

  // Step 2: enumerate and decide the keys of the divergent buckets only.
  const std::vector<uint32_t> divergent = DivergentBuckets(digests);
  res.set_divergent_buckets(divergent.size());
  if (!divergent.empty()) {
    std::vector<bool> in_divergent(nbuckets, false);
    for (uint32_t b : divergent) in_divergent[b] = true;
    MergedScan scan(replicas, shard, t.epoch(), "", page);
    while (true) {
      if (ctx.cancelled && ctx.cancelled()) return absl::CancelledError("task stopped");
      if (ctx.yield) ctx.yield();
      auto entries = scan.Next();
      if (!entries.ok()) return entries.status();
      if (entries->empty()) break;
      std::vector<std::vector<Mutation>> repairs(replicas.size());
      for (const auto& e : *entries) {
        if (!in_divergent[AeBucket(e.pk, nbuckets)]) continue;
        const RepairDecision d = DecideRepair(e.copies, start_ms);
        res.set_conflicts(res.conflicts() + (d.conflict ? 1 : 0));
        res.set_unresolved_conflicts(res.unresolved_conflicts() + (d.unresolved ? 1 : 0));
        res.set_expired(res.expired() + (d.expired ? 1 : 0));
        if (!d.mismatch) continue;
        res.set_mismatches(res.mismatches() + 1);
        if (static_cast<size_t>(res.divergent_keys_size()) < kMaxDivergentKeys) {
          res.add_divergent_keys(e.pk);
        }
        if (!t.repair()) continue;
        for (size_t i = 0; i < replicas.size(); ++i) {
          if (d.write[i]) repairs[i].push_back(RepairOf(*d.truth, d.overwrite_same_version));
        }
      }
      for (size_t i = 0; i < replicas.size(); ++i) {
        MIROIR_RETURN_IF_ERROR(ApplyRepairs(replicas[i], shard, t.epoch(), repairs[i]));
        res.set_documents(res.documents() + repairs[i].size());
      }
    }
  }

  // Step 3: tombstone GC, only after a repairing pass that reached every replica.
  if (t.repair() && t.purge_tombstones_before_ms() > 0) {
    const int64_t bound = std::min(t.purge_tombstones_before_ms(), start_ms);
    for (const auto& r : replicas) {
      auto n = r.store->PurgeTombstones(shard, t.epoch(), bound, ctx.cancelled);
      if (!n.ok()) {
        return n.status().code() == absl::StatusCode::kCancelled ? n.status()
                                                                 : Prefixed(r.node, n.status());
      }
      res.set_purged_tombstones(res.purged_tombstones() + *n);
    }
  }
  return res;
}

}  // namespace miroir
