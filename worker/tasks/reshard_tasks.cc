#include "worker/tasks/reshard_tasks.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/route_sets.h"
#include "common/routing.h"
#include "common/status_macros.h"
#include "worker/tasks/ae_logic.h"
#include "worker/tasks/merged_scan.h"
#include "worker/tasks/task_failure.h"

namespace miroir {
namespace {

constexpr size_t kMaxDivergentKeys = 100;
constexpr uint32_t kDefaultPage = 1000;
// Source entries of divergent buckets that the verify's second pass holds in
// memory at once; more divergent buckets than that are enumerated in rounds.
constexpr uint64_t kMaxVerifyKeysPerRound = 1'000'000;
// Pass 3: candidates re-read key by key (beyond that many, counted as found).
constexpr size_t kMaxSettleKeys = 10'000;
constexpr int kSettleReads = 6;
constexpr absl::Duration kSettleDelay = absl::Milliseconds(50);

absl::Status Prefixed(const std::string& node, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(node, ": ", s.message()));
}

uint64_t HashOf(const StoredDoc& d) {
  return EntryHash(d.pk, d.version.hlc, d.version.writer, d.tombstone, d.body);
}

// The source shard and the target generation must differ: a copy into itself
// would "succeed" while copying nothing.
absl::Status ValidateCopyTask(const v1::Task& t) {
  if (auto s = ValidateGenerationRoute(t.target_route(), t.has_target_route(), "target_route",
                                       RouteSet::kWriteSet);
      !s.ok()) {
    return s;
  }
  if (t.target_route().index() == t.index() && t.target_route().generation() == t.generation()) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_route.generation: ", t.generation(), " is the source generation"));
  }
  return absl::OkStatus();
}

// Resolves every write-set node of the target route once; each page is routed
// by RouteMutations and sent with one ApplyMany per node.
absl::StatusOr<MutationSink> OpenReshardSink(const TaskContext& ctx) {
  const v1::GenerationRoute& target = ctx.task.target_route();
  std::map<std::string, std::shared_ptr<StoreAdapter>> stores;
  for (const auto& r : target.routes()) {
    for (const auto& n : RouteNodes(r, RouteSet::kWriteSet)) {
      if (stores.contains(n)) continue;
      auto s = ctx.store(n);
      if (!s.ok()) return Prefixed(n, s.status());
      stores.emplace(n, *std::move(s));
    }
  }
  const uint64_t epoch = ctx.task.epoch();
  return MutationSink([&target, epoch, stores = std::move(stores)](
                          const std::vector<Mutation>& muts) -> absl::Status {
    for (const auto& [node, batches] : RouteMutations(target, muts)) {
      auto r = stores.at(node)->ApplyMany(epoch, batches);
      if (!r.ok()) return Prefixed(node, r.status());
      for (const auto& results : *r) {
        for (const auto& a : results) {
          if (a.outcome == ApplyOutcome::kFenced) {
            return absl::FailedPreconditionError(absl::StrCat(node, ": fenced at epoch ", a.fence,
                                                              ", above the task's epoch ", epoch));
          }
        }
      }
    }
    return absl::OkStatus();
  });
}

// Calls `visit(shard, nodes, entry)` for every pk of every shard of `route`,
// merged over the shard's owners in every group (`nodes[i]` holds
// `entry.copies[i]`), shard by shard in key order, at the task's epoch.
using EntryVisitor = std::function<void(uint32_t shard, const std::vector<std::string>& nodes,
                                        const MergedEntry& entry)>;

absl::Status ScanGeneration(const TaskContext& ctx, const v1::GenerationRoute& route,
                            Throttle& throttle, const EntryVisitor& visit,
                            uint64_t* replicas_read) {
  const uint32_t page = ctx.task.batch_size() == 0 ? kDefaultPage : ctx.task.batch_size();
  for (uint32_t s = 0; s < route.shards(); ++s) {
    const std::vector<std::string> nodes =
        RouteNodes(route.routes(static_cast<int>(s)), RouteSet::kOwners);
    std::vector<Replica> replicas;
    for (const auto& n : nodes) {
      auto store = ctx.store(n);
      if (!store.ok()) return Prefixed(n, store.status());
      replicas.push_back(Replica{n, *std::move(store)});
    }
    MergedScan scan(std::move(replicas), ShardKey{route.index(), route.generation(), s},
                    ctx.task.epoch(), "", page);
    while (true) {
      if (ctx.cancelled()) return absl::CancelledError("task stopped");
      auto entries = scan.Next();
      if (!entries.ok()) return entries.status();
      if (entries->empty()) break;
      for (const auto& e : *entries) visit(s, nodes, e);
      throttle.Account(entries->size());
    }
    if (replicas_read != nullptr) *replicas_read += nodes.size();
  }
  return absl::OkStatus();
}

// What the verify's second pass keeps of one source key.
struct SourceEntry {
  Version version;
  bool tombstone = false;
  uint64_t body_hash = 0;
  bool seen = false;      // found in its target shard
  bool mismatch = false;  // some target owner lacks exactly this entry, or a stray copy
  bool newer = false;     // some target owner lacks it or holds an older version
};

bool SameAs(const StoredDoc& d, const SourceEntry& s) {
  return d.version == s.version && d.tombstone == s.tombstone &&
         (s.tombstone || BodyHash(d.body) == s.body_hash);
}

// One key read straight from every owner of its shard in both generations, to
// tell a write still in flight from a real difference.
struct KeyReading {
  std::optional<StoredDoc> source;  // newest over the source owners
  bool agree = false;               // every target owner holds exactly `source`
  bool source_newer = false;        // some target owner lacks it or is older
};

absl::StatusOr<KeyReading> ReadKey(const TaskContext& ctx, const v1::GenerationRoute& source,
                                   const v1::GenerationRoute& target, const std::string& pk) {
  KeyReading out;
  const uint32_t ss = ShardForKey(pk, source.shards());
  for (const auto& n : RouteNodes(source.routes(static_cast<int>(ss)), RouteSet::kOwners)) {
    auto store = ctx.store(n);
    if (!store.ok()) return Prefixed(n, store.status());
    auto d = (*store)->Get(ShardKey{source.index(), source.generation(), ss}, ctx.task.epoch(), pk);
    if (!d.ok() && d.status().code() != absl::StatusCode::kNotFound) return Prefixed(n, d.status());
    if (d.ok() && (!out.source || out.source->version < d->version)) out.source = *std::move(d);
  }
  const uint32_t ts = ShardForKey(pk, target.shards());
  out.agree = true;
  for (const auto& n : RouteNodes(target.routes(static_cast<int>(ts)), RouteSet::kOwners)) {
    auto store = ctx.store(n);
    if (!store.ok()) return Prefixed(n, store.status());
    auto d = (*store)->Get(ShardKey{target.index(), target.generation(), ts}, ctx.task.epoch(), pk);
    if (!d.ok() && d.status().code() != absl::StatusCode::kNotFound) return Prefixed(n, d.status());
    if (!d.ok()) {
      if (out.source) out.agree = false, out.source_newer = true;
      continue;
    }
    if (!out.source) {
      out.agree = false;
      continue;
    }
    if (d->version < out.source->version) out.source_newer = true;
    if (d->version != out.source->version || d->tombstone != out.source->tombstone ||
        (!d->tombstone && d->body != out.source->body)) {
      out.agree = false;
    }
  }
  return out;
}

// Mismatch tally: counts, and the smallest kMaxDivergentKeys keys.
class MismatchReport {
 public:
  void Add(const std::string& pk, bool newer_in_source) {
    ++mismatches_;
    if (newer_in_source) ++newer_;
    keys_.insert(pk);
    if (keys_.size() > kMaxDivergentKeys) keys_.erase(std::prev(keys_.end()));
  }
  void Fill(v1::TaskResult* res) const {
    res->set_mismatches(mismatches_);
    res->set_newer_in_source(newer_);
    for (const auto& k : keys_) res->add_divergent_keys(k);
  }

 private:
  uint64_t mismatches_ = 0;
  uint64_t newer_ = 0;
  std::set<std::string> keys_;
};

}  // namespace

absl::Status ValidateGenerationRoute(const v1::GenerationRoute& route, bool present,
                                     const std::string& field, RouteSet set) {
  if (!present) return absl::InvalidArgumentError(absl::StrCat(field, ": missing"));
  if (route.index().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".index: empty"));
  }
  if (route.shards() == 0) return absl::InvalidArgumentError(absl::StrCat(field, ".shards: 0"));
  if (static_cast<uint32_t>(route.routes_size()) != route.shards()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".routes: ", route.routes_size(),
                                                   " entries for ", route.shards(), " shards"));
  }
  for (int i = 0; i < route.routes_size(); ++i) {
    const v1::ShardRoute& r = route.routes(i);
    if (r.shard() != static_cast<uint32_t>(i)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".routes[", i, "].shard: ", r.shard(), ", expected ", i));
    }
    if (RouteNodes(r, set).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".routes[", i, "]: no ", set == RouteSet::kWriteSet ? "write-set node" : "owner"));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> RouteNodes(const v1::ShardRoute& route, RouteSet set) {
  const GroupSets& groups = set == RouteSet::kWriteSet ? WriteSet(route) : route.owners();
  std::vector<std::string> out;
  for (const auto& g : groups) {
    for (const auto& n : g.nodes()) {
      if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
  }
  return out;
}

std::map<std::string, std::vector<ShardMutations>> RouteMutations(
    const v1::GenerationRoute& target, const std::vector<Mutation>& muts) {
  // node -> target shard -> mutations; std::map keeps batches in shard order.
  std::map<std::string, std::map<uint32_t, std::vector<Mutation>>> by_node;
  for (const auto& m : muts) {
    const uint32_t shard = ShardForKey(m.pk, target.shards());
    for (const auto& n : RouteNodes(target.routes(static_cast<int>(shard)), RouteSet::kWriteSet)) {
      by_node[n][shard].push_back(m);
    }
  }
  std::map<std::string, std::vector<ShardMutations>> out;
  for (auto& [node, shards] : by_node) {
    auto& batches = out[node];
    for (auto& [shard, ms] : shards) {
      batches.push_back(
          ShardMutations{ShardKey{target.index(), target.generation(), shard}, std::move(ms)});
    }
  }
  return out;
}

absl::StatusOr<v1::TaskResult> RunReshardBackfill(const TaskContext& ctx) {
  MIROIR_RETURN_IF_ERROR(ValidateCopyTask(ctx.task));
  return CopyShard(ctx, [&ctx] { return OpenReshardSink(ctx); });
}

namespace {

absl::StatusOr<v1::TaskResult> RunReshardDeltaBatch(const TaskContext& ctx) {
  const v1::Task& t = ctx.task;
  if (t.sources_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("sources: a batched RESHARD_DELTA names one node, not ", t.sources_size()));
  }
  const std::string& node = t.sources(0);
  std::vector<ShardKey> to_read;  // catch-up entries: their position is read first
  for (const auto& b : t.node_shards()) {
    const bool has_f = !b.upto().node().empty();
    if (b.from().node() != node || (has_f && b.upto().node() != node)) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch: shard ", b.shard(), ": W and F must be positions of ", node));
    }
    if (has_f && b.from().incarnation() != b.upto().incarnation()) {
      return IncarnationChangedError(absl::StrCat("node ", node, " was fenced under ",
                                                  b.upto().incarnation(), ", W is from ",
                                                  b.from().incarnation()));
    }
    if (!has_f) to_read.push_back(ShardKey{t.index(), t.generation(), b.shard()});
  }
  auto store = ctx.store(node);
  if (!store.ok()) return Prefixed(node, store.status());
  // Where each range ends: F, or (a catch-up pass) the shard's position now, read
  // for every such shard in one pipelined round trip (a fence at epoch 0 raises
  // nothing). Either way the node must still be W's incarnation.
  std::vector<SeqPosition> positions;  // of the catch-up entries, in order
  if (!to_read.empty()) {
    auto read = (*store)->SetFenceMany(to_read, 0);
    if (!read.ok()) return Prefixed(node, read.status());
    positions = *std::move(read);
  }
  std::string incarnation;  // the node's now, for the entries with F
  if (to_read.size() < static_cast<size_t>(t.node_shards_size())) {
    auto now = (*store)->Incarnation();
    if (!now.ok()) return Prefixed(node, now.status());
    incarnation = *std::move(now);
  }
  struct Range {
    int entry;  // in t.node_shards
    v1::Watermark end;
    uint64_t after, documents;
  };
  std::vector<Range> ranges;
  size_t next_read = 0;
  for (int i = 0; i < t.node_shards_size(); ++i) {
    const auto& b = t.node_shards(i);
    v1::Watermark end = b.upto();
    if (end.node().empty()) {
      const SeqPosition& p = positions[next_read++];
      end.set_node(node);
      end.set_incarnation(p.incarnation);
      end.set_seq(p.seq);
    }
    const std::string& now = b.upto().node().empty() ? end.incarnation() : incarnation;
    if (b.from().incarnation() != now) {
      return IncarnationChangedError(
          absl::StrCat("node ", node, " was ", b.from().incarnation(), ", now ", now));
    }
    ranges.push_back(Range{i, std::move(end), b.from().seq(), 0});
  }
  auto sink = OpenReshardSink(ctx);
  if (!sink.ok()) return sink.status();
  const uint32_t page = t.batch_size() == 0 ? kDefaultPage : t.batch_size();
  uint64_t copied = 0;
  std::vector<Range*> open;
  for (auto& r : ranges) {
    if (r.after < r.end.seq()) open.push_back(&r);
  }
  while (!open.empty()) {
    if (ctx.cancelled()) return absl::CancelledError("task stopped");
    std::vector<StoreAdapter::ChangedRange> reads;
    reads.reserve(open.size());
    for (const Range* r : open) {
      reads.push_back({ShardKey{t.index(), t.generation(), t.node_shards(r->entry).shard()},
                       r->after, r->end.seq()});
    }
    auto pages = (*store)->ChangedSinceMany(t.epoch(), reads, page);
    if (!pages.ok()) return Prefixed(node, pages.status());
    std::vector<Mutation> muts;
    std::vector<Range*> still;
    for (size_t i = 0; i < open.size(); ++i) {
      Range* r = open[i];
      const auto& docs = (*pages)[i];
      for (const auto& d : docs) muts.push_back(ToMutation(d));
      r->documents += docs.size();
      r->after = docs.empty() ? r->end.seq() : docs.back().change_seq;
      if (docs.size() == page && r->after < r->end.seq()) still.push_back(r);
    }
    if (!muts.empty()) {
      MIROIR_RETURN_IF_ERROR((*sink)(muts));
      copied += muts.size();
      if (ctx.on_copied) ctx.on_copied(muts.size());
    }
    open = std::move(still);
  }
  v1::TaskResult res;
  for (const auto& r : ranges) {
    auto* b = res.add_node_shards();
    b->set_shard(t.node_shards(r.entry).shard());
    *b->mutable_watermark() = r.end;
    b->set_documents(r.documents);
  }
  res.set_documents(copied);
  res.set_remaining(copied);
  return res;
}

}  // namespace

absl::StatusOr<v1::TaskResult> RunReshardDelta(const TaskContext& ctx) {
  MIROIR_RETURN_IF_ERROR(ValidateCopyTask(ctx.task));
  if (!ctx.task.node_shards().empty()) return RunReshardDeltaBatch(ctx);
  return CopyChanges(ctx, /*final_delta=*/!ctx.task.upto().empty(),
                     [&ctx] { return OpenReshardSink(ctx); });
}

// Two passes (docs/task-protocol.md "RESHARD_VERIFY"):
//  1. digests: per pk bucket, the XOR of EntryHash over the source's newest copy
//     of each key, and over the target keys whose owners all hold the same entry
//     in the right shard (any other target key flags its bucket);
//  2. only for the buckets that differ: the source entries of those buckets are
//     kept in memory (in rounds of at most kMaxVerifyKeysPerRound), the target
//     is scanned again and each key is judged per owner.
absl::StatusOr<v1::TaskResult> RunReshardVerify(const TaskContext& ctx) {
  const v1::Task& t = ctx.task;
  if (auto s = ValidateGenerationRoute(t.source_route(), t.has_source_route(), "source_route",
                                       RouteSet::kOwners);
      !s.ok()) {
    return s;
  }
  if (auto s = ValidateGenerationRoute(t.target_route(), t.has_target_route(), "target_route",
                                       RouteSet::kOwners);
      !s.ok()) {
    return s;
  }
  const v1::GenerationRoute& source = t.source_route();
  const v1::GenerationRoute& target = t.target_route();
  if (source.index() == target.index() && source.generation() == target.generation()) {
    return absl::InvalidArgumentError(absl::StrCat("target_route.generation: ", target.generation(),
                                                   " is the source_route's generation"));
  }
  const uint32_t buckets = t.ae_buckets() == 0 ? kDefaultAeBuckets : t.ae_buckets();
  const uint32_t target_shards = target.shards();
  Throttle throttle(t.throttle_docs_per_s(), ctx.cancelled, ctx.yield);
  v1::TaskResult res;
  uint64_t replicas_read = 0;

  // Pass 1.
  std::vector<uint64_t> source_xor(buckets, 0), target_xor(buckets, 0), source_keys(buckets, 0);
  std::vector<uint8_t> flagged(buckets, 0);
  uint64_t documents = 0;
  MIROIR_RETURN_IF_ERROR(ScanGeneration(
      ctx, source, throttle,
      [&](uint32_t, const std::vector<std::string>&, const MergedEntry& e) {
        const uint32_t b = AeBucket(e.pk, buckets);
        source_xor[b] ^= HashOf(e.Newest());
        ++source_keys[b];
        ++documents;
      },
      &replicas_read));
  std::map<std::string, ShardDigest> node_digests;
  MIROIR_RETURN_IF_ERROR(ScanGeneration(
      ctx, target, throttle,
      [&](uint32_t shard, const std::vector<std::string>& nodes, const MergedEntry& e) {
        const uint32_t b = AeBucket(e.pk, buckets);
        bool agree = ShardForKey(e.pk, target_shards) == shard;
        std::optional<uint64_t> first;
        for (size_t i = 0; i < nodes.size(); ++i) {
          const auto& c = e.copies[i];
          if (!c) {
            agree = false;
            continue;
          }
          node_digests[nodes[i]].Add(c->pk, c->version.hlc, c->version.writer, c->tombstone,
                                     c->body);
          const uint64_t h = HashOf(*c);
          if (!first) first = h;
          agree = agree && h == *first;
        }
        if (agree) {
          target_xor[b] ^= *first;
        } else {
          flagged[b] = 1;
        }
      },
      &replicas_read));
  std::vector<uint32_t> divergent;
  for (uint32_t b = 0; b < buckets; ++b) {
    if (flagged[b] || source_xor[b] != target_xor[b]) divergent.push_back(b);
  }

  // Pass 2, in rounds of divergent buckets: candidate keys (pk, source newer).
  MismatchReport report;
  std::vector<std::pair<std::string, bool>> candidates;
  size_t next = 0;
  while (next < divergent.size()) {
    std::vector<uint8_t> in_round(buckets, 0);
    uint64_t keys = 0;
    do {
      in_round[divergent[next]] = 1;
      keys += source_keys[divergent[next]];
      ++next;
    } while (next < divergent.size() &&
             keys + source_keys[divergent[next]] <= kMaxVerifyKeysPerRound);
    absl::flat_hash_map<std::string, SourceEntry> entries;
    entries.reserve(keys);
    MIROIR_RETURN_IF_ERROR(ScanGeneration(
        ctx, source, throttle,
        [&](uint32_t, const std::vector<std::string>&, const MergedEntry& e) {
          if (!in_round[AeBucket(e.pk, buckets)]) return;
          const StoredDoc& d = e.Newest();
          SourceEntry& s = entries[e.pk];
          s.version = d.version;
          s.tombstone = d.tombstone;
          s.body_hash = d.tombstone ? 0 : BodyHash(d.body);
        },
        nullptr));
    absl::flat_hash_set<std::string> extra;  // target keys the source does not have
    MIROIR_RETURN_IF_ERROR(ScanGeneration(
        ctx, target, throttle,
        [&](uint32_t shard, const std::vector<std::string>& nodes, const MergedEntry& e) {
          if (!in_round[AeBucket(e.pk, buckets)]) return;
          auto it = entries.find(e.pk);
          if (it == entries.end()) {
            extra.insert(e.pk);
            return;
          }
          SourceEntry& s = it->second;
          if (ShardForKey(e.pk, target_shards) != shard) {
            s.mismatch = true;  // a stray copy in a shard no reader looks in
            return;
          }
          s.seen = true;
          for (size_t i = 0; i < nodes.size(); ++i) {
            const auto& c = e.copies[i];
            if (!c || c->version < s.version) {
              s.mismatch = s.newer = true;
            } else if (!SameAs(*c, s)) {
              s.mismatch = true;
            }
          }
        },
        nullptr));
    for (const auto& [pk, s] : entries) {
      if (!s.seen || s.mismatch) candidates.push_back({pk, !s.seen || s.newer});
    }
    for (const auto& pk : extra) candidates.push_back({pk, false});
    documents += extra.size();
  }

  // Pass 3: the two generations were scanned at different instants, so a key
  // written meanwhile differs without being wrong. Each candidate is read again
  // from every owner on both sides, up to kSettleReads times kSettleDelay apart:
  // it counts when it still differs on three reads at one source version; a key
  // whose source version keeps changing is being written and is left to the
  // coordinator's next catch-up and verify (`remaining` counts those).
  uint64_t in_flight = 0;
  std::sort(candidates.begin(), candidates.end());
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (i >= kMaxSettleKeys) {
      report.Add(candidates[i].first, candidates[i].second);
      continue;
    }
    if (ctx.cancelled()) return absl::CancelledError("task stopped");
    std::optional<Version> last;
    int same = 0;  // consecutive reads that differed at one source version
    bool counted = false, settled = false;
    for (int attempt = 0; attempt < kSettleReads && !settled; ++attempt) {
      if (attempt > 0) absl::SleepFor(kSettleDelay);
      auto r = ReadKey(ctx, source, target, candidates[i].first);
      if (!r.ok()) return r.status();
      if (r->agree) {
        settled = true;
        break;
      }
      const Version v = r->source ? r->source->version : Version{};
      same = (last && *last == v) ? same + 1 : 0;
      last = v;
      if (same >= 2) {
        report.Add(candidates[i].first, r->source_newer);
        counted = settled = true;
      }
    }
    if (!settled && !counted) ++in_flight;
  }
  res.set_remaining(in_flight);

  report.Fill(&res);
  res.set_divergent_buckets(divergent.size());
  res.set_documents(documents);
  res.set_replicas_reached(replicas_read);
  for (const auto& [node, d] : node_digests) {
    auto* nd = res.add_digests();
    nd->set_node(node);
    nd->set_documents(d.documents());
    nd->set_tombstones(d.tombstones());
    nd->set_digest(d.Hex());
  }
  return res;
}

}  // namespace miroir
