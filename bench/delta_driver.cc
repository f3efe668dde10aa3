// delta_driver: documents read by a delta pass vs. documents changed since W
// (issue 5 benchmark: "Delta passes: documents read ≤ 1.1 × documents changed
// since W"), on real redis-server nodes.
//
// One shard of N documents on node A and the same copy on node B (as after a
// backfill). For each M in --changes, for --runs repetitions:
//
//  1. W = A.CurrentSeq(shard);
//  2. M distinct documents change on A through the real conditional-write script:
//     most updated once, some updated 3 times, some deleted, some updated then
//     deleted, some deleted then put again, some new keys inserted (one mutation
//     per Apply batch slot, increasing versions, in a shuffled order);
//  3. a TASK_CATCH_UP from A into B through RunTask (exactly as a worker runs it,
//     checkpoint with W for A), with A wrapped in a counting decorator that counts
//     the entries ChangedSince returns (documents read from A) and their distinct pks;
//  4. reference: the same M documents in their final state, on a separate shard of
//     A, copied into B (pre-loaded with their pre-change versions) by plain keyset
//     Scan pages + the same put_if_newer Apply — the same reads and writes without
//     the change sequence;
//  5. check: B's shard equals A's (pk, version, tombstone) after the pass.
//
// Prints a Markdown report (docs/benchmarks/moves.md "Delta passes" is one run).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "harness/redis_node.h"
#include "harness/temp_dir.h"
#include "worker/stores/redis_store.h"
#include "worker/tasks/task_executors.h"

namespace {

using miroir::ShardKey;
using miroir::StoreAdapter;
using miroir::StoredDoc;
using miroir::testing::RedisNode;

// Forwards every call; counts what the reads return and the time spent in them.
class CountingStore : public StoreAdapter {
 public:
  explicit CountingStore(std::shared_ptr<StoreAdapter> inner) : inner_(std::move(inner)) {}

  void Reset() {
    changed_entries = changed_calls = scan_entries = 0;
    changed_ns = scan_ns = 0;
    changed_pks.clear();
  }
  uint64_t changed_entries = 0, changed_calls = 0, scan_entries = 0;
  int64_t changed_ns = 0, scan_ns = 0;
  absl::flat_hash_set<std::string> changed_pks;

  absl::StatusOr<std::string> Incarnation() override { return inner_->Incarnation(); }
  absl::StatusOr<std::vector<miroir::ApplyResult>> Apply(
      const ShardKey& s, uint64_t e, const std::vector<miroir::Mutation>& m) override {
    return inner_->Apply(s, e, m);
  }
  absl::StatusOr<std::vector<std::vector<miroir::ApplyResult>>> ApplyMany(
      uint64_t e, const std::vector<miroir::ShardMutations>& b) override {
    return inner_->ApplyMany(e, b);
  }
  absl::StatusOr<StoredDoc> Get(const ShardKey& s, uint64_t e, const std::string& pk) override {
    return inner_->Get(s, e, pk);
  }
  absl::StatusOr<std::vector<StoredDoc>> Scan(const ShardKey& s, uint64_t e,
                                              const std::string& after, uint32_t limit) override {
    const absl::Time t0 = absl::Now();
    auto r = inner_->Scan(s, e, after, limit);
    scan_ns += absl::ToInt64Nanoseconds(absl::Now() - t0);
    if (r.ok()) scan_entries += r->size();
    return r;
  }
  absl::StatusOr<std::vector<StoredDoc>> ChangedSince(const ShardKey& s, uint64_t e, uint64_t after,
                                                      uint64_t upto, uint32_t limit) override {
    const absl::Time t0 = absl::Now();
    auto r = inner_->ChangedSince(s, e, after, upto, limit);
    changed_ns += absl::ToInt64Nanoseconds(absl::Now() - t0);
    ++changed_calls;
    if (r.ok()) {
      changed_entries += r->size();
      for (const auto& d : *r) changed_pks.insert(d.pk);
    }
    return r;
  }
  absl::StatusOr<miroir::SeqPosition> CurrentSeq(const ShardKey& s) override {
    return inner_->CurrentSeq(s);
  }
  absl::StatusOr<miroir::SeqPosition> SetFence(const ShardKey& s, uint64_t e) override {
    return inner_->SetFence(s, e);
  }
  absl::StatusOr<uint64_t> GetFence(const ShardKey& s) override { return inner_->GetFence(s); }
  absl::Status DeleteShard(const ShardKey& s, uint64_t e,
                           const std::function<bool()>& cancelled) override {
    return inner_->DeleteShard(s, e, cancelled);
  }
  absl::StatusOr<miroir::ShardStatsResult> Stats(const ShardKey& s) override {
    return inner_->Stats(s);
  }
  absl::StatusOr<miroir::NodeCapacity> Capacity() override { return inner_->Capacity(); }
  absl::StatusOr<uint64_t> PurgeTombstones(const ShardKey& s, uint64_t e, int64_t before,
                                           const std::function<bool()>& cancelled) override {
    return inner_->PurgeTombstones(s, e, before, cancelled);
  }

 private:
  std::shared_ptr<StoreAdapter> inner_;
};

int Fail(const absl::Status& s, const char* what) {
  std::fprintf(stderr, "delta_driver: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

absl::Status ApplyAll(StoreAdapter& st, const ShardKey& shard,
                      const std::vector<miroir::Mutation>& muts, size_t batch) {
  for (size_t at = 0; at < muts.size(); at += batch) {
    std::vector<miroir::Mutation> b(
        muts.begin() + static_cast<std::ptrdiff_t>(at),
        muts.begin() + static_cast<std::ptrdiff_t>(std::min(muts.size(), at + batch)));
    auto r = st.Apply(shard, 1, b);
    if (!r.ok()) return r.status();
    for (const auto& a : *r) {
      if (a.outcome != miroir::ApplyOutcome::kApplied) {
        return absl::InternalError(absl::StrCat("apply not applied for a pk in ", shard.shard));
      }
    }
  }
  return absl::OkStatus();
}

// Every entry of a shard (keyset pages), as (pk -> version, tombstone).
absl::StatusOr<std::map<std::string, std::pair<miroir::Version, bool>>> Dump(
    StoreAdapter& st, const ShardKey& shard) {
  std::map<std::string, std::pair<miroir::Version, bool>> out;
  std::string after;
  while (true) {
    auto page = st.Scan(shard, miroir::kAnyEpoch, after, 1000);
    if (!page.ok()) return page.status();
    if (page->empty()) break;
    for (const auto& d : *page) out[d.pk] = {d.version, d.tombstone};
    after = page->back().pk;
  }
  return out;
}

struct RunResult {
  uint64_t mutations = 0;
  uint64_t distinct_changed = 0;  // distinct pks with a mutation applied after W
  uint64_t seq_advance = 0;       // A's change seq after the changes − W
  uint64_t read = 0;              // ChangedSince entries returned during the pass
  uint64_t read_distinct = 0;
  uint64_t calls = 0;
  uint64_t copied = 0;  // TaskResult.documents
  double pass_s = 0, pass_read_s = 0;
  double ref_s = 0, ref_read_s = 0;
  uint64_t ref_read = 0;
  double full_scan_s = 0;
  uint64_t full_scan_docs = 0;
};

struct LiveResult {
  uint64_t before = 0;          // distinct documents changed between W and the pass
  uint64_t live_writes = 0;     // writes during pass 1
  uint64_t live_distinct = 0;   // distinct documents they touched
  uint64_t total_distinct = 0;  // distinct documents changed since W, at the end
  uint64_t pass1_read = 0, pass2_read = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"delta_driver: documents read by a catch-up pass vs. changed since W"};
  int docs = 100000;
  int body = 200;
  int runs = 3;
  int batch = 1000;
  std::vector<int> changes{1000, 10000};
  app.add_option("--docs", docs, "documents in the shard (N)");
  app.add_option("--body-bytes", body, "body size");
  app.add_option("--changes", changes, "distinct documents changed since W (M), each a run");
  app.add_option("--runs", runs, "repetitions per M (fresh W and fresh changes each)");
  app.add_option("--batch", batch, "catch-up page size (task.batch_size)");
  double live_rate = 1000;
  app.add_option("--live-writes-per-s", live_rate,
                 "writes to A during one extra pass per M (0 = skip that pass)");
  CLI11_PARSE(app, argc, argv);

  miroir::testing::TempDir tmp("delta-bench");
  const ShardKey shard{"bench", 1, 0};
  std::vector<std::unique_ptr<RedisNode>> nodes;
  std::vector<std::shared_ptr<StoreAdapter>> raw;
  for (const char* id : {"A", "B"}) {
    auto n = RedisNode::Start(tmp.Subdir(id));
    if (!n.ok()) return Fail(n.status(), "redis");
    miroir::StoreOptions so;
    so.op_timeout_ms = 30000;
    auto s = miroir::RedisStore::Create((*n)->address(), so);
    if (!s.ok()) return Fail(s.status(), "store");
    raw.push_back(std::shared_ptr<StoreAdapter>(std::move(*s)));
    nodes.push_back(std::move(*n));
  }
  auto counted_a = std::make_shared<CountingStore>(raw[0]);
  StoreAdapter& a = *raw[0];
  StoreAdapter& b = *raw[1];

  const std::string payload(static_cast<size_t>(body), 'x');
  auto doc_body = [&](uint64_t tag) {
    return absl::StrCat("{\"t\":", tag, ",\"p\":\"", payload, "\"}");
  };
  constexpr uint64_t kWriter = 7;
  uint64_t hlc = 1000;  // every mutation gets a fresh, increasing version
  // Current state per pk (for choosing changes): true = live document.
  std::vector<std::string> live;
  {
    std::vector<miroir::Mutation> load;
    for (int i = 0; i < docs; ++i) {
      const std::string pk = absl::StrCat("doc:", i);
      load.push_back(miroir::Mutation{pk, miroir::Version{++hlc, kWriter}, false, doc_body(0), 0});
      live.push_back(pk);
    }
    for (StoreAdapter* st : {&a, &b}) {
      if (auto s = ApplyAll(*st, shard, load, 1000); !s.ok()) return Fail(s, "load");
    }
  }
  uint64_t next_new = static_cast<uint64_t>(docs);
  std::mt19937_64 rng(42);

  // A TASK_CATCH_UP from A (counted) into B from W, as the coordinator leases it.
  auto catch_up_ctx = [&](const std::string& incarnation, uint64_t seq) {
    miroir::TaskContext ctx;
    ctx.task.set_kind(miroir::v1::TASK_CATCH_UP);
    ctx.task.set_index(shard.index);
    ctx.task.set_generation(shard.generation);
    ctx.task.set_shards(1);
    ctx.task.set_shard(0);
    ctx.task.set_epoch(1);
    ctx.task.add_sources("A");
    ctx.task.add_targets("B");
    ctx.task.set_batch_size(static_cast<uint32_t>(batch));
    auto* wm = ctx.task.mutable_checkpoint()->add_watermarks();
    wm->set_node("A");
    wm->set_incarnation(incarnation);
    wm->set_seq(seq);
    ctx.store = [&](const std::string& id) -> absl::StatusOr<std::shared_ptr<StoreAdapter>> {
      if (id == "A") return std::static_pointer_cast<StoreAdapter>(counted_a);
      if (id == "B") return raw[1];
      return absl::NotFoundError(id);
    };
    ctx.checkpoint = [](const miroir::v1::Checkpoint&) { return true; };
    ctx.cancelled = [] { return false; };
    ctx.on_copied = [](uint64_t) {};
    return ctx;
  };

  std::vector<std::vector<RunResult>> results(changes.size());
  std::vector<LiveResult> live_results;
  uint32_t ref_shard_no = 100;
  for (size_t ci = 0; ci < changes.size(); ++ci) {
    const int m = changes[ci];
    for (int run = 0; run < runs; ++run) {
      RunResult rr;
      auto w = a.CurrentSeq(shard);
      if (!w.ok()) return Fail(w.status(), "CurrentSeq");

      // M distinct keys: 5% new inserts, the rest picked from live documents.
      std::shuffle(live.begin(), live.end(), rng);
      const int inserts = m / 20;
      std::vector<std::string> picked(live.begin(), live.begin() + (m - inserts));
      for (int i = 0; i < inserts; ++i) picked.push_back(absl::StrCat("doc:", next_new++));
      // Per key, its sequence of mutations (true = delete):
      //  60% put once, 15% put 3 times, 10% delete, 5% put then delete,
      //  5% delete then put (on existing keys); the 5% inserts: put once.
      std::vector<std::vector<bool>> plan(picked.size());
      for (size_t i = 0; i < picked.size(); ++i) {
        const size_t slot = i * 20 / picked.size();  // 0..19, in 5% steps
        if (static_cast<int>(i) >= m - inserts) {
          plan[i] = {false};
        } else if (slot < 12) {
          plan[i] = {false};
        } else if (slot < 15) {
          plan[i] = {false, false, false};
        } else if (slot < 17) {
          plan[i] = {true};
        } else if (slot < 18) {
          plan[i] = {false, true};
        } else {
          plan[i] = {true, false};
        }
      }
      // Interleave: round k applies the k-th mutation of every key with one, the
      // keys shuffled per round (so a key's later version is written later).
      std::vector<miroir::Mutation> muts;
      std::vector<size_t> order(picked.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      for (size_t round = 0; round < 3; ++round) {
        std::shuffle(order.begin(), order.end(), rng);
        for (size_t i : order) {
          if (round >= plan[i].size()) continue;
          const bool del = plan[i][round];
          muts.push_back(miroir::Mutation{picked[i], miroir::Version{++hlc, kWriter}, del,
                                          del ? std::string() : doc_body(hlc), 0});
        }
      }
      rr.mutations = muts.size();
      rr.distinct_changed = picked.size();
      if (auto s = ApplyAll(a, shard, muts, 500); !s.ok()) return Fail(s, "changes");
      auto after_changes = a.CurrentSeq(shard);
      if (!after_changes.ok()) return Fail(after_changes.status(), "CurrentSeq");
      rr.seq_advance = after_changes->seq - w->seq;
      // Keep `live` the set of live documents.
      {
        absl::flat_hash_map<std::string, bool> final_deleted;
        for (const auto& mu : muts) final_deleted[mu.pk] = mu.tombstone;
        std::vector<std::string> next;
        next.reserve(live.size() + inserts);
        for (const auto& pk : live) {
          auto it = final_deleted.find(pk);
          if (it == final_deleted.end() || !it->second) next.push_back(pk);
        }
        for (int i = m - inserts; i < m; ++i) next.push_back(picked[static_cast<size_t>(i)]);
        live.swap(next);
      }

      // Reference shard: the changed keys at their pre-change version on both A and
      // B, then their final state on A only; a keyset Scan + Apply copies A → B.
      const ShardKey ref{"bench", 1, ref_shard_no++};
      {
        std::vector<miroir::Mutation> before, after;
        absl::flat_hash_map<std::string, const miroir::Mutation*> last;
        for (const auto& mu : muts) last[mu.pk] = &mu;
        for (const auto& pk : picked) {
          before.push_back(
              miroir::Mutation{pk, miroir::Version{1, kWriter}, false, doc_body(0), 0});
          after.push_back(*last[pk]);
        }
        std::sort(after.begin(), after.end(),
                  [](const auto& x, const auto& y) { return x.pk < y.pk; });
        if (auto s = ApplyAll(a, ref, before, 1000); !s.ok()) return Fail(s, "ref load");
        // B's reference shard holds as many entries as the real one (the changed
        // keys plus filler), so the Apply side writes into a same-size shard.
        const size_t filler = live.size() > before.size() ? live.size() - before.size() : 0;
        for (size_t i = 0; i < filler; ++i) {
          before.push_back(miroir::Mutation{absl::StrCat("fill:", i), miroir::Version{1, kWriter},
                                            false, doc_body(0), 0});
        }
        if (auto s = ApplyAll(b, ref, before, 1000); !s.ok()) return Fail(s, "ref load");
        if (auto s = ApplyAll(a, ref, after, 1000); !s.ok()) return Fail(s, "ref changes");
      }

      // 3. The catch-up pass, as a worker runs TASK_CATCH_UP.
      miroir::TaskContext ctx = catch_up_ctx(w->incarnation, w->seq);
      counted_a->Reset();
      absl::Time t0 = absl::Now();
      auto res = miroir::RunTask(ctx);
      rr.pass_s = absl::ToDoubleSeconds(absl::Now() - t0);
      if (!res.ok()) return Fail(res.status(), "catch-up");
      rr.read = counted_a->changed_entries;
      rr.read_distinct = counted_a->changed_pks.size();
      rr.calls = counted_a->changed_calls;
      rr.copied = res->documents();
      rr.pass_read_s = static_cast<double>(counted_a->changed_ns) / 1e9;

      // 4. Reference copy: keyset Scan pages of the same documents + the same Apply.
      counted_a->Reset();
      t0 = absl::Now();
      {
        std::string cursor;
        while (true) {
          auto page = counted_a->Scan(ref, 1, cursor, static_cast<uint32_t>(batch));
          if (!page.ok()) return Fail(page.status(), "ref scan");
          if (page->empty()) break;
          std::vector<miroir::Mutation> cp;
          for (const auto& d : *page) {
            cp.push_back(miroir::Mutation{d.pk, d.version, d.tombstone,
                                          d.tombstone ? std::string() : d.body,
                                          d.tombstone ? 0 : d.expires_at_ms});
          }
          if (auto s = ApplyAll(b, ref, cp, cp.size()); !s.ok()) return Fail(s, "ref apply");
          cursor = page->back().pk;
        }
      }
      rr.ref_s = absl::ToDoubleSeconds(absl::Now() - t0);
      rr.ref_read = counted_a->scan_entries;
      rr.ref_read_s = static_cast<double>(counted_a->scan_ns) / 1e9;

      // Full keyset scan of A's whole shard (what a pass without change sequences reads).
      if (run == 0) {
        counted_a->Reset();
        t0 = absl::Now();
        std::string cursor;
        while (true) {
          auto page = counted_a->Scan(shard, 1, cursor, static_cast<uint32_t>(batch));
          if (!page.ok()) return Fail(page.status(), "full scan");
          if (page->empty()) break;
          cursor = page->back().pk;
        }
        rr.full_scan_s = absl::ToDoubleSeconds(absl::Now() - t0);
        rr.full_scan_docs = counted_a->scan_entries;
      }

      // 5. B must now equal A.
      auto da = Dump(a, shard);
      auto db = Dump(b, shard);
      if (!da.ok() || !db.ok() || *da != *db) {
        std::fprintf(stderr, "delta_driver: B differs from A after the pass (M=%d run %d)\n", m,
                     run);
        return 1;
      }
      results[ci].push_back(rr);
    }

    // With live writes on A during the pass: M changes before the pass, then a
    // writer puts random live documents at --live-writes-per-s while pass 1 runs;
    // pass 2 starts from pass 1's watermark after the writer stopped.
    if (live_rate > 0) {
      LiveResult lr;
      auto w = a.CurrentSeq(shard);
      if (!w.ok()) return Fail(w.status(), "CurrentSeq");
      std::shuffle(live.begin(), live.end(), rng);
      std::vector<miroir::Mutation> muts;
      for (int i = 0; i < m; ++i) {
        muts.push_back(miroir::Mutation{live[static_cast<size_t>(i)],
                                        miroir::Version{++hlc, kWriter}, false, doc_body(hlc), 0});
      }
      if (auto s = ApplyAll(a, shard, muts, 500); !s.ok()) return Fail(s, "changes");
      lr.before = static_cast<uint64_t>(m);
      std::atomic<bool> stop{false};
      std::atomic<uint64_t> wrote{0};
      absl::flat_hash_set<std::string> live_pks;
      const uint64_t base = hlc + 1;
      std::thread writer([&] {
        std::mt19937_64 wr(7 + ci);
        const absl::Time start = absl::Now();
        uint64_t n = 0;
        while (!stop.load()) {
          const std::string& pk = live[wr() % live.size()];
          miroir::Mutation mu{pk, miroir::Version{base + n, kWriter}, false, doc_body(base + n), 0};
          if (raw[0]->Apply(shard, 1, {mu}).ok()) {
            live_pks.insert(pk);
            wrote.store(++n);
          }
          const absl::Time due = start + absl::Seconds(static_cast<double>(n) / live_rate);
          if (absl::Now() < due) absl::SleepFor(due - absl::Now());
        }
      });
      counted_a->Reset();
      absl::SleepFor(absl::Milliseconds(20));  // the writer is running when the pass starts
      auto ctx = catch_up_ctx(w->incarnation, w->seq);
      auto r1 = miroir::RunTask(ctx);
      lr.pass1_read = counted_a->changed_entries;
      stop.store(true);
      writer.join();
      if (!r1.ok()) return Fail(r1.status(), "live catch-up 1");
      lr.live_writes = wrote.load();
      lr.live_distinct = live_pks.size();
      hlc = base + lr.live_writes + 1;
      // Distinct documents changed since W in total (the M plus the writer's).
      absl::flat_hash_set<std::string> all(live_pks.begin(), live_pks.end());
      for (const auto& mu : muts) all.insert(mu.pk);
      lr.total_distinct = all.size();
      const auto& wm2 = r1->watermarks(0);
      counted_a->Reset();
      auto ctx2 = catch_up_ctx(wm2.incarnation(), wm2.seq());
      auto r2 = miroir::RunTask(ctx2);
      if (!r2.ok()) return Fail(r2.status(), "live catch-up 2");
      lr.pass2_read = counted_a->changed_entries;
      auto da = Dump(a, shard);
      auto db = Dump(b, shard);
      if (!da.ok() || !db.ok() || *da != *db) {
        std::fprintf(stderr, "delta_driver: B differs from A after two live passes (M=%d)\n", m);
        return 1;
      }
      live_results.push_back(lr);
    }
  }

  double load1 = 0, load5 = 0, load15 = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf %lf %lf", &load1, &load5, &load15) != 3) load1 = load5 = load15 = 0;
    std::fclose(f);
  }
  std::printf(
      "### Documents read vs. changed since W (N = %d documents, %d-byte bodies, pages of %d, "
      "%d runs per M)\n\n",
      docs, body, batch, runs);
  std::printf(
      "| M (distinct changed) | mutations applied after W | A's seq advance | documents read "
      "(ChangedSince entries) | distinct pks read | **read / changed** | ChangedSince calls | "
      "copied |\n|---|---|---|---|---|---|---|---|\n");
  for (size_t ci = 0; ci < changes.size(); ++ci) {
    for (const auto& r : results[ci]) {
      std::printf(
          "| %llu | %llu | %llu | %llu | %llu | **%.3f** | %llu | %llu |\n",
          static_cast<unsigned long long>(r.distinct_changed),
          static_cast<unsigned long long>(r.mutations),
          static_cast<unsigned long long>(r.seq_advance), static_cast<unsigned long long>(r.read),
          static_cast<unsigned long long>(r.read_distinct),
          static_cast<double>(r.read) / static_cast<double>(r.distinct_changed),
          static_cast<unsigned long long>(r.calls), static_cast<unsigned long long>(r.copied));
    }
  }
  std::printf(
      "\n### Wall time: catch-up pass vs. a plain keyset Scan + Apply of the same documents\n\n");
  std::printf(
      "| M | run | catch-up pass (s) | of which ChangedSince (s) | Scan + Apply reference (s) | "
      "of which Scan (s) | **pass / reference** | ChangedSince / Scan |\n"
      "|---|---|---|---|---|---|---|---|\n");
  for (size_t ci = 0; ci < changes.size(); ++ci) {
    std::vector<double> ratio, rratio;
    int run = 0;
    for (const auto& x : results[ci]) {
      ratio.push_back(x.pass_s / x.ref_s);
      rratio.push_back(x.pass_read_s / x.ref_read_s);
      std::printf("| %d | %d | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f |\n", changes[ci], ++run,
                  x.pass_s, x.pass_read_s, x.ref_s, x.ref_read_s, ratio.back(), rratio.back());
    }
    std::printf("| %d | median | | | | | **%.2f** | %.2f |\n", changes[ci], Median(ratio),
                Median(rratio));
  }
  std::printf("\nFull keyset scan of the whole shard on A (read only, pages of %d): ", batch);
  for (size_t ci = 0; ci < changes.size(); ++ci) {
    const auto& x = results[ci].front();
    std::printf("%s%llu documents in %.3f s", ci ? "; " : "",
                static_cast<unsigned long long>(x.full_scan_docs), x.full_scan_s);
  }
  std::printf(" — what a pass without a change sequence would read.\n");
  if (!live_results.empty()) {
    std::printf(
        "\n### With live writes on A during the pass (%.0f writes/s to random live documents)\n\n"
        "| M changed before the pass | writes during pass 1 (distinct docs) | pass 1 read | pass 2 "
        "read | total read | distinct changed since W | **total read / changed** |\n"
        "|---|---|---|---|---|---|---|\n",
        live_rate);
    for (const auto& l : live_results) {
      const uint64_t total = l.pass1_read + l.pass2_read;
      std::printf(
          "| %llu | %llu (%llu) | %llu | %llu | %llu | %llu | **%.3f** |\n",
          static_cast<unsigned long long>(l.before), static_cast<unsigned long long>(l.live_writes),
          static_cast<unsigned long long>(l.live_distinct),
          static_cast<unsigned long long>(l.pass1_read),
          static_cast<unsigned long long>(l.pass2_read), static_cast<unsigned long long>(total),
          static_cast<unsigned long long>(l.total_distinct),
          static_cast<double>(total) / static_cast<double>(l.total_distinct));
    }
  }
  std::printf("\nLoad average at the end of the run: %.2f %.2f %.2f (nproc 2 shared).\n", load1,
              load5, load15);
  return 0;
}
