#include "worker/tasks/task_executors.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/status_macros.h"
#include "worker/tasks/ae_pass.h"
#include "worker/tasks/reshard_tasks.h"
#include "worker/tasks/task_failure.h"

namespace miroir {

Mutation ToMutation(const StoredDoc& d) {
  return Mutation{d.pk, d.version, d.tombstone, d.tombstone ? std::string() : d.body,
                  d.tombstone ? 0 : d.expires_at_ms};
}

namespace {

constexpr size_t kMaxDivergentKeys = 100;

absl::Status Prefixed(const std::string& node, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(node, ": ", s.message()));
}

// put_if_newer of `muts` into one target; a fenced answer stops the task.
absl::Status ApplyTo(const Replica& target, const ShardKey& shard, uint64_t epoch,
                     const std::vector<Mutation>& muts) {
  if (muts.empty()) return absl::OkStatus();
  auto r = target.store->Apply(shard, epoch, muts);
  if (!r.ok()) return Prefixed(target.node, r.status());
  for (const auto& a : *r) {
    if (a.outcome == ApplyOutcome::kFenced) {
      return absl::FailedPreconditionError(absl::StrCat(target.node, ": fenced at epoch ", a.fence,
                                                        ", above the task's epoch ", epoch));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyToAll(const std::vector<Replica>& targets, const ShardKey& shard, uint64_t epoch,
                        const std::vector<Mutation>& muts) {
  for (const auto& t : targets) {
    MIROIR_RETURN_IF_ERROR(ApplyTo(t, shard, epoch, muts));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Replica>> Resolve(
    const TaskContext& ctx, const google::protobuf::RepeatedPtrField<std::string>& ids) {
  std::vector<Replica> out;
  for (const auto& id : ids) {
    auto s = ctx.store(id);
    if (!s.ok()) return Prefixed(id, s.status());
    out.push_back(Replica{id, *s});
  }
  return out;
}

ShardKey KeyOf(const v1::Task& t) { return ShardKey{t.index(), t.generation(), t.shard()}; }

absl::Status Cancelled() { return absl::CancelledError("task stopped"); }

// Re-reads each of task.joining by a fence at the task's epoch into res->joining.
// Returns whether every one still has the incarnation the task names.
absl::StatusOr<bool> ReReadJoining(const TaskContext& ctx, v1::TaskResult* res) {
  const v1::Task& t = ctx.task;
  bool same = true;
  for (const auto& want : t.joining()) {
    auto store = ctx.store(want.node());
    if (!store.ok()) return Prefixed(want.node(), store.status());
    auto f = (*store)->SetFence(KeyOf(t), t.epoch());
    if (!f.ok()) return Prefixed(want.node(), f.status());
    auto* w = res->add_joining();
    w->set_node(want.node());
    w->set_incarnation(f->incarnation);
    w->set_seq(f->seq);
    same = same && f->incarnation == want.incarnation();
  }
  return same;
}

// Raises the fence of the task's shard on every target to the task's epoch
// (never lowers it), so a stale holder of an earlier lease, whose epoch is
// older, is refused by the nodes from then on (DESIGN §6). With `res`, each
// fence reply (the target's incarnation and position) is added to its watermarks.
absl::Status FenceTargets(const TaskContext& ctx, v1::TaskResult* res = nullptr) {
  const v1::Task& t = ctx.task;
  auto targets = Resolve(ctx, t.targets());
  if (!targets.ok()) return targets.status();
  for (const auto& r : *targets) {
    if (ctx.cancelled()) return Cancelled();
    auto f = r.store->SetFence(KeyOf(t), t.epoch());
    if (!f.ok()) return Prefixed(r.node, f.status());
    if (res != nullptr) {
      auto* w = res->add_watermarks();
      w->set_node(r.node);
      w->set_incarnation(f->incarnation);
      w->set_seq(f->seq);
    }
  }
  return absl::OkStatus();
}

SinkFactory MoveSink(const TaskContext& ctx);

// A rejoin's PREPARE, once the rejoining node is fenced (`res` holds its fence
// reply F): copies what changed there in (sync point, F] by version into the
// shard's current owners — the final-delta copy, from that one source — before
// the wipe (DESIGN §6, Node rejoin). Under another incarnation there is nothing.
absl::Status Rescue(const TaskContext& ctx, v1::TaskResult* res) {
  const v1::Task& t = ctx.task;
  if (t.kind() != v1::TASK_PREPARE || t.rescue_from().node().empty() || t.rescue_into().empty()) {
    return absl::OkStatus();
  }
  const v1::Watermark* f = nullptr;
  for (const auto& w : res->watermarks()) {
    if (w.node() == t.rescue_from().node()) f = &w;
  }
  if (f == nullptr || f->incarnation() != t.rescue_from().incarnation()) return absl::OkStatus();
  TaskContext sub = ctx;
  sub.task.clear_sources();
  sub.task.add_sources(f->node());
  sub.task.clear_targets();
  for (const auto& n : t.rescue_into()) sub.task.add_targets(n);
  sub.task.clear_upto();
  *sub.task.add_upto() = *f;
  sub.task.mutable_checkpoint()->Clear();
  *sub.task.mutable_checkpoint()->add_watermarks() = t.rescue_from();
  // A re-leased prepare copies again from the sync point (the copy is idempotent).
  sub.checkpoint = [&ctx](const v1::Checkpoint&) { return !ctx.cancelled(); };
  auto copied = CopyChanges(sub, /*final_delta=*/true, MoveSink(sub));
  if (!copied.ok()) return copied.status();
  res->set_documents(copied->documents());
  return absl::OkStatus();
}

// PREPARE and CLEANUP: fence every target first (the fence replies, with the
// targets' incarnations, are the result's watermarks), then wipe the shard there
// at the same epoch. A holder whose lease has moved on is refused by the node
// (the new holder, or the backfill after it, raised the fence above its epoch).
// A CLEANUP naming joining nodes re-reads them first and deletes nothing when
// one changed incarnation: the coordinator reconciles first.
absl::StatusOr<v1::TaskResult> FenceAndWipe(const TaskContext& ctx) {
  const v1::Task& t = ctx.task;
  v1::TaskResult res;
  auto same = ReReadJoining(ctx, &res);
  if (!same.ok()) return same.status();
  if (!*same) return res;
  MIROIR_RETURN_IF_ERROR(FenceTargets(ctx, &res));
  MIROIR_RETURN_IF_ERROR(Rescue(ctx, &res));
  auto targets = Resolve(ctx, t.targets());
  if (!targets.ok()) return targets.status();
  for (const auto& r : *targets) {
    if (auto s = r.store->DeleteShard(KeyOf(t), t.epoch(), ctx.cancelled); !s.ok()) {
      return s.code() == absl::StatusCode::kCancelled ? s : Prefixed(r.node, s);
    }
  }
  return res;
}

// A copy that may end the move's copying (FINAL_DELTA, a BACKFILL whose delta
// pass is skipped): once copied, the joining nodes are re-read (DESIGN §6).
absl::StatusOr<v1::TaskResult> ThenReReadJoining(const TaskContext& ctx,
                                                 absl::StatusOr<v1::TaskResult> copied) {
  if (!copied.ok() || ctx.task.joining().empty()) return copied;
  if (auto same = ReReadJoining(ctx, &*copied); !same.ok()) return same.status();
  return copied;
}

absl::StatusOr<v1::TaskResult> Fence(const TaskContext& ctx) {
  const v1::Task& t = ctx.task;
  // The fence runs while writes to the shard are held (the cutover stall): every
  // target is fenced at once, so the stall pays the slowest node, not their sum.
  const int n = t.targets_size();
  std::vector<absl::StatusOr<SeqPosition>> fences(n, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&ctx, &t, &fences, i] {
      auto store = ctx.store(t.targets(i));
      fences[i] = store.ok() ? (*store)->SetFence(KeyOf(t), t.epoch()) : store.status();
    });
  }
  for (auto& th : threads) th.join();
  v1::TaskResult res;
  for (int i = 0; i < n; ++i) {
    if (!fences[i].ok()) {
      res.add_unreachable(t.targets(i));
      continue;
    }
    auto* w = res.add_watermarks();
    w->set_node(t.targets(i));
    w->set_incarnation(fences[i]->incarnation);
    w->set_seq(fences[i]->seq);
  }
  return res;
}

// A node-batched FENCE (a reshard's swap): every listed shard of the one target
// fenced at the task's epoch (epoch 0 raises nothing: a position read) in one
// pipelined round trip, so the swap pays a round trip per node, not per shard.
// A node that does not answer is reported in `unreachable`, as Fence does: the
// coordinator counts who was fenced.
absl::StatusOr<v1::TaskResult> FenceBatch(const TaskContext& ctx) {
  const v1::Task& t = ctx.task;
  if (t.targets_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("targets: a batched FENCE names one node, not ", t.targets_size()));
  }
  const std::string& node = t.targets(0);
  std::vector<ShardKey> keys;
  keys.reserve(static_cast<size_t>(t.node_shards_size()));
  for (const auto& b : t.node_shards())
    keys.push_back(ShardKey{t.index(), t.generation(), b.shard()});
  v1::TaskResult res;
  auto store = ctx.store(node);
  auto fences = store.ok() ? (*store)->SetFenceMany(keys, t.epoch())
                           : absl::StatusOr<std::vector<SeqPosition>>(store.status());
  if (!fences.ok() || fences->size() != keys.size()) {
    res.add_unreachable(node);
    return res;
  }
  for (int i = 0; i < t.node_shards_size(); ++i) {
    auto* b = res.add_node_shards();
    b->set_shard(t.node_shards(i).shard());
    b->mutable_watermark()->set_node(node);
    b->mutable_watermark()->set_incarnation((*fences)[static_cast<size_t>(i)].incarnation);
    b->mutable_watermark()->set_seq((*fences)[static_cast<size_t>(i)].seq);
  }
  return res;
}

// The move tasks' sink: every page goes to every target of the task, in the
// task's own shard.
SinkFactory MoveSink(const TaskContext& ctx) {
  return [&ctx]() -> absl::StatusOr<MutationSink> {
    auto targets = Resolve(ctx, ctx.task.targets());
    if (!targets.ok()) return targets.status();
    return MutationSink([&ctx, targets = *std::move(targets)](const std::vector<Mutation>& muts) {
      return ApplyToAll(targets, KeyOf(ctx.task), ctx.task.epoch(), muts);
    });
  };
}

}  // namespace

absl::StatusOr<v1::TaskResult> CopyShard(const TaskContext& ctx, const SinkFactory& open_sink) {
  const v1::Task& t = ctx.task;
  auto sources = Resolve(ctx, t.sources());
  if (!sources.ok()) return sources.status();
  auto sink = open_sink();
  if (!sink.ok()) return sink.status();
  v1::Checkpoint cp = t.checkpoint();
  if (cp.watermarks().empty()) {
    // W of every source first, so the catch-up sees everything after the copy began.
    for (const auto& s : *sources) {
      auto pos = s.store->CurrentSeq(KeyOf(t));
      if (!pos.ok()) return Prefixed(s.node, pos.status());
      auto* w = cp.add_watermarks();
      w->set_node(s.node);
      w->set_incarnation(pos->incarnation);
      w->set_seq(pos->seq);
    }
    cp.set_cursor("");
    cp.set_documents(0);
    if (!ctx.checkpoint(cp)) return Cancelled();
  }
  MergedScan scan(*sources, KeyOf(t), t.epoch(), cp.cursor(), t.batch_size());
  Throttle throttle(t.throttle_docs_per_s(), ctx.cancelled, ctx.yield);
  while (true) {
    if (ctx.cancelled()) return Cancelled();
    auto page = scan.Next();
    if (!page.ok()) return page.status();
    if (page->empty()) break;
    std::vector<Mutation> muts;
    muts.reserve(page->size());
    for (const auto& e : *page) muts.push_back(ToMutation(e.Newest()));
    MIROIR_RETURN_IF_ERROR((*sink)(muts));
    cp.set_documents(cp.documents() + muts.size());
    cp.set_cursor(scan.cursor());
    if (ctx.on_copied) ctx.on_copied(muts.size());
    throttle.Account(muts.size());
    if (!ctx.checkpoint(cp)) return Cancelled();
  }
  v1::TaskResult res;
  *res.mutable_watermarks() = cp.watermarks();
  res.set_documents(cp.documents());
  return res;
}

absl::StatusOr<v1::TaskResult> CopyChanges(const TaskContext& ctx, bool final_delta,
                                           const SinkFactory& open_sink) {
  const v1::Task& t = ctx.task;
  auto sink = open_sink();
  if (!sink.ok()) return sink.status();
  v1::Checkpoint cp = t.checkpoint();
  if (cp.watermarks().empty()) {
    return absl::InvalidArgumentError("checkpoint.watermarks: a delta pass needs W per source");
  }
  Throttle throttle(t.throttle_docs_per_s(), ctx.cancelled, ctx.yield);
  uint64_t copied = 0;
  const uint32_t batch = t.batch_size() == 0 ? 1000 : t.batch_size();
  for (auto& w : *cp.mutable_watermarks()) {
    if (!t.sources().empty() &&
        std::find(t.sources().begin(), t.sources().end(), w.node()) == t.sources().end()) {
      continue;
    }
    auto store = ctx.store(w.node());
    if (!store.ok()) return Prefixed(w.node(), store.status());
    auto pos = (*store)->CurrentSeq(KeyOf(t));
    if (!pos.ok()) return Prefixed(w.node(), pos.status());
    if (pos->incarnation != w.incarnation()) {
      return IncarnationChangedError(
          absl::StrCat("node ", w.node(), " was ", w.incarnation(), ", now ", pos->incarnation));
    }
    uint64_t upto = pos->seq;
    if (final_delta) {
      const v1::Watermark* f = nullptr;
      for (const auto& u : t.upto()) {
        if (u.node() == w.node()) f = &u;
      }
      if (f == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("upto: no F for source ", w.node(), " in the final delta"));
      }
      if (f->incarnation() != w.incarnation()) {
        return IncarnationChangedError(absl::StrCat("node ", w.node(), " was fenced under ",
                                                    f->incarnation(), ", W is from ",
                                                    w.incarnation()));
      }
      upto = f->seq();
    }
    uint64_t after = w.seq();
    while (after < upto) {
      if (ctx.cancelled()) return Cancelled();
      auto docs = (*store)->ChangedSince(KeyOf(t), t.epoch(), after, upto, batch);
      if (!docs.ok()) return Prefixed(w.node(), docs.status());
      if (docs->empty()) break;
      std::vector<Mutation> muts;
      muts.reserve(docs->size());
      for (const auto& d : *docs) muts.push_back(ToMutation(d));
      MIROIR_RETURN_IF_ERROR((*sink)(muts));
      after = docs->back().change_seq;
      copied += muts.size();
      if (ctx.on_copied) ctx.on_copied(muts.size());
      throttle.Account(muts.size());
      w.set_seq(after);
      cp.set_documents(cp.documents() + muts.size());
      if (!ctx.checkpoint(cp)) return Cancelled();
    }
    w.set_seq(std::max(w.seq(), upto));
  }
  v1::TaskResult res;
  *res.mutable_watermarks() = cp.watermarks();
  res.set_documents(copied);
  res.set_remaining(copied);
  return res;
}

absl::StatusOr<v1::TaskResult> Reconcile(const ShardKey& shard, const std::vector<Replica>& sources,
                                         const std::vector<Replica>& targets,
                                         const ReconcileOptions& options) {
  std::vector<Replica> replicas;
  std::vector<bool> is_target;
  absl::flat_hash_map<std::string, size_t> index_of;
  auto add = [&](const Replica& r, bool target) {
    auto [it, inserted] = index_of.emplace(r.node, replicas.size());
    if (inserted) {
      replicas.push_back(r);
      is_target.push_back(target);
    } else if (target) {
      is_target[it->second] = true;
    }
  };
  for (const auto& r : sources) add(r, false);
  for (const auto& r : targets) add(r, true);
  std::vector<ShardDigest> digests(replicas.size());
  MergedScan scan(replicas, shard, options.epoch, "", options.batch_size);
  Throttle throttle(options.throttle_docs_per_s, options.cancelled, options.yield);
  v1::TaskResult res;
  while (true) {
    if (options.cancelled && options.cancelled()) return Cancelled();
    auto page = scan.Next();
    if (!page.ok()) return page.status();
    if (page->empty()) break;
    std::vector<std::vector<Mutation>> repairs(replicas.size());
    for (const auto& e : *page) {
      const StoredDoc& newest = e.Newest();
      bool mismatch = false;
      for (size_t i = 0; i < replicas.size(); ++i) {
        const auto& c = e.copies[i];
        if (c) digests[i].Add(c->pk, c->version.hlc, c->version.writer, c->tombstone, c->body);
        if (!is_target[i]) continue;
        if (!c || c->version != newest.version) {
          mismatch = true;
          if (options.repair) repairs[i].push_back(ToMutation(newest));
        }
      }
      if (mismatch) {
        res.set_mismatches(res.mismatches() + 1);
        if (static_cast<size_t>(res.divergent_keys_size()) < kMaxDivergentKeys) {
          res.add_divergent_keys(e.pk);
        }
      }
    }
    uint64_t repaired = 0;
    for (size_t i = 0; i < replicas.size(); ++i) {
      MIROIR_RETURN_IF_ERROR(ApplyTo(replicas[i], shard, options.epoch, repairs[i]));
      repaired += repairs[i].size();
    }
    res.set_documents(res.documents() + repaired);
    throttle.Account(page->size());
  }
  for (size_t i = 0; i < replicas.size(); ++i) {
    auto* d = res.add_digests();
    d->set_node(replicas[i].node);
    d->set_documents(digests[i].documents());
    d->set_tombstones(digests[i].tombstones());
    d->set_digest(digests[i].Hex());
  }
  return res;
}

Throttle::Throttle(uint64_t docs_per_s, std::function<bool()> cancelled,
                   std::function<void()> yield)
    : rate_(docs_per_s),
      cancelled_(std::move(cancelled)),
      yield_(std::move(yield)),
      start_(absl::Now()) {}

void Throttle::Account(uint64_t docs) {
  if (yield_) yield_();
  if (rate_ == 0) return;
  done_ += docs;
  const absl::Time due = start_ + absl::Seconds(static_cast<double>(done_) / rate_);
  while (absl::Now() < due && !(cancelled_ && cancelled_())) {
    absl::SleepFor(std::min(due - absl::Now(), absl::Milliseconds(50)));
  }
}

absl::StatusOr<v1::TaskResult> RunTask(const TaskContext& ctx) {
  const v1::Task& t = ctx.task;
  // A verify names whole generations (source_route, target_route), not one shard.
  if (t.kind() == v1::TASK_RESHARD_VERIFY) return RunReshardVerify(ctx);
  if (t.index().empty() || t.shards() == 0 || t.shard() >= t.shards()) {
    return absl::InvalidArgumentError(absl::StrCat("task ", t.id(), ": index/shard malformed"));
  }
  for (const auto& b : t.node_shards()) {
    if (b.shard() >= t.shards()) {
      return absl::InvalidArgumentError(
          absl::StrCat("task ", t.id(), ": batch shard ", b.shard(), " is not below ", t.shards()));
    }
  }
  switch (t.kind()) {
    case v1::TASK_PREPARE:
    case v1::TASK_CLEANUP:
      return FenceAndWipe(ctx);
    case v1::TASK_FENCE:
      return t.node_shards().empty() ? Fence(ctx) : FenceBatch(ctx);
    case v1::TASK_BACKFILL:
      // J's fence goes from the prepare epoch E0 up to the backfill's (E1 or a
      // later published one) before anything is copied: a stale prepare holder's
      // wipe can no longer reach what is copied or dual-written.
      MIROIR_RETURN_IF_ERROR(FenceTargets(ctx));
      return ThenReReadJoining(ctx, CopyShard(ctx, MoveSink(ctx)));
    case v1::TASK_CATCH_UP:
      return CopyChanges(ctx, /*final_delta=*/false, MoveSink(ctx));
    case v1::TASK_FINAL_DELTA:
      return ThenReReadJoining(ctx, CopyChanges(ctx, /*final_delta=*/true, MoveSink(ctx)));
    case v1::TASK_RESHARD_BACKFILL:
      return RunReshardBackfill(ctx);
    case v1::TASK_RESHARD_DELTA:
      return RunReshardDelta(ctx);
    case v1::TASK_AE_PASS:
      return RunAePass(ctx);
    case v1::TASK_RECONCILE:
    case v1::TASK_VERIFY: {
      auto sources = Resolve(ctx, t.sources());
      if (!sources.ok()) return sources.status();
      auto targets = Resolve(ctx, t.targets());
      if (!targets.ok()) return targets.status();
      ReconcileOptions o;
      o.epoch = t.epoch();
      o.batch_size = t.batch_size() == 0 ? 1000 : t.batch_size();
      o.throttle_docs_per_s = t.throttle_docs_per_s();
      o.cancelled = ctx.cancelled;
      o.yield = ctx.yield;
      o.repair = t.kind() != v1::TASK_VERIFY && t.repair();
      // VERIFY and a target-less pass compare every listed replica with the others.
      const std::vector<Replica>& cmp =
          (t.kind() == v1::TASK_VERIFY || targets->empty()) ? *sources : *targets;
      return Reconcile(KeyOf(t), *sources, cmp, o);
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("task ", t.id(), ": unknown kind ", static_cast<int>(t.kind())));
  }
}

}  // namespace miroir
