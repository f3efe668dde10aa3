#include "harness/test_writer.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <deque>
#include <random>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/grpc_server.h"
#include "common/routing.h"
#include "harness/redis_node.h"
#include "miroir/v1/anti_entropy.grpc.pb.h"

namespace miroir::testing {

uint64_t WriterStats::failed() const { return unknown + rejected; }

std::string DescribeWrites(const WriterStats& st) {
  std::string codes;
  for (const auto& [code, n] : st.error_codes) absl::StrAppend(&codes, " code", code, "=", n);
  return absl::StrCat("issued=", st.issued, " acked=", st.acked(), " degraded=", st.degraded,
                      " unknown=", st.unknown, " rejected=", st.rejected,
                      " stream_failures=", st.stream_failures,
                      codes.empty() ? " codes: none" : codes,
                      " max_batch_latency=", absl::FormatDuration(st.max_batch_latency));
}
namespace {

namespace pb = ::miroir::v1;

constexpr size_t kMaxFailureLines = 40;

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// A definite per-item refusal: nothing was applied.
bool DefiniteRefusal(int code) {
  return code == grpc::StatusCode::INVALID_ARGUMENT || code == grpc::StatusCode::NOT_FOUND;
}

// Runs `fn`, cancelling `ctx` if it has not returned after `timeout` (so a
// blocking stream call always ends).
template <typename Fn>
void CancelAfter(grpc::ClientContext* ctx, absl::Duration timeout, Fn fn) {
  absl::Mutex mu;
  bool done = false;
  std::thread watchdog([&] {
    absl::MutexLock l(&mu);
    if (!mu.AwaitWithTimeout(absl::Condition(&done), timeout)) ctx->TryCancel();
  });
  fn();
  {
    absl::MutexLock l(&mu);
    done = true;
  }
  watchdog.join();
}

void AddFailure(CheckReport* r, std::string line) {
  if (r->failures.size() < kMaxFailureLines) r->failures.push_back(std::move(line));
}

}  // namespace

TestWriter::TestWriter(WriterOptions options) : options_(std::move(options)) {
  absl::BitGen gen;
  run_id_ = absl::StrFormat("%016x", absl::Uniform<uint64_t>(gen));
}

TestWriter::~TestWriter() {
  Stop();
  Wait();
}

absl::Status TestWriter::Start() {
  if (options_.worker_addresses.empty()) {
    return absl::InvalidArgumentError("worker_addresses: at least one worker is needed");
  }
  if (options_.keys <= 0 || options_.streams <= 0 || options_.batch_size <= 0) {
    return absl::InvalidArgumentError("keys, streams and batch_size must be positive");
  }
  if (!threads_.empty()) return absl::FailedPreconditionError("already started");
  started_at_ = absl::Now();
  for (int i = 0; i < options_.streams; ++i) {
    threads_.emplace_back([this, i] { StreamLoop(i); });
  }
  return absl::OkStatus();
}

void TestWriter::Stop() { stop_.store(true); }

void TestWriter::Wait() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

absl::Status TestWriter::Run() {
  if (absl::Status s = Start(); !s.ok()) return s;
  Wait();
  return absl::OkStatus();
}

WriterStats TestWriter::stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

std::map<std::string, KeyRecord> TestWriter::records() const {
  absl::MutexLock l(&mu_);
  return records_;
}

void TestWriter::StreamLoop(int stream_index) {
  // This stream's keys: i ≡ stream_index (mod streams). Only this thread touches
  // them, so operations on a key are sequential by construction.
  std::vector<std::string> keys;
  for (int i = stream_index; i < options_.keys; i += options_.streams) {
    keys.push_back(absl::StrCat(options_.key_prefix, i));
  }
  std::deque<std::string> to_load;
  if (options_.load_first) to_load.assign(keys.begin(), keys.end());
  std::map<std::string, uint64_t> after_version;  // last acked version per key
  std::set<std::string> retired;
  std::mt19937_64 rng(options_.seed != 0 ? options_.seed + stream_index
                                         : absl::Uniform<uint64_t>(absl::BitGen()));
  std::bernoulli_distribution is_delete(options_.delete_fraction);
  const absl::Time end = started_at_ + options_.max_duration;
  const absl::Duration batch_interval =
      options_.ops_per_second > 0
          ? absl::Seconds(options_.batch_size * options_.streams / options_.ops_per_second)
          : absl::ZeroDuration();
  absl::Time next_batch = absl::Now();
  int worker = stream_index % static_cast<int>(options_.worker_addresses.size());
  uint64_t batch_id = 0;

  bool rotate = false;  // rotate_workers: this stream's batch is done, next worker
  bool loaded = false;  // load_only: this stream's load pass is done
  while (!loaded && !stop_.load() && absl::Now() < end) {
    // One stream (one worker) until it breaks; then the next worker.
    auto channel = MakeChannel(options_.worker_addresses[worker]);
    auto stub = pb::DataPlane::NewStub(channel);
    grpc::ClientContext ctx;
    auto stream = stub->Write(&ctx);
    bool broken = false;
    rotate = false;
    while (!broken && !rotate && !stop_.load() && absl::Now() < end) {
      if (options_.max_ops > 0 && issued_.load() >= options_.max_ops) {
        stop_.store(true);
        break;
      }
      if (batch_interval > absl::ZeroDuration()) {
        absl::Time now = absl::Now();
        if (next_batch > now) absl::SleepFor(next_batch - now);
        next_batch = std::max(next_batch + batch_interval, absl::Now() - batch_interval);
      }
      // Pick distinct live keys.
      std::vector<std::string> live;
      for (const auto& k : keys) {
        if (!retired.count(k)) live.push_back(k);
      }
      if (live.empty()) {
        stop_.store(true);
        break;
      }
      while (!to_load.empty() && retired.count(to_load.front())) to_load.pop_front();
      bool loading = !to_load.empty();
      if (!loading && options_.load_only) {
        loaded = true;
        break;
      }
      if (loading) {
        live.assign(to_load.begin(),
                    to_load.begin() + std::min<size_t>(options_.batch_size, to_load.size()));
        for (size_t i = 0; i < live.size(); ++i) to_load.pop_front();
      } else {
        std::shuffle(live.begin(), live.end(), rng);
      }
      size_t n = std::min<size_t>(options_.batch_size, live.size());
      if (options_.max_ops > 0) {
        int64_t left = options_.max_ops - issued_.fetch_add(static_cast<int64_t>(n));
        if (left <= 0) {
          stop_.store(true);
          break;
        }
        n = std::min<size_t>(n, static_cast<size_t>(left));
      } else {
        issued_.fetch_add(static_cast<int64_t>(n));
      }
      pb::WriteBatch batch;
      batch.set_batch_id(++batch_id);
      std::vector<bool> deletes;
      std::vector<std::string> bodies;
      for (size_t i = 0; i < n; ++i) {
        const std::string& key = live[i];
        pb::WriteItem* item = batch.add_items();
        item->set_after_version(after_version[key]);
        bool del = loading ? options_.load_deletes : is_delete(rng);
        deletes.push_back(del);
        if (del) {
          item->mutable_delete_()->set_index(options_.index);
          item->mutable_delete_()->set_pk(key);
          bodies.emplace_back();
        } else {
          std::string body = absl::StrCat("{\"key\":\"", Escape(key), "\",\"run\":\"", run_id_,
                                          "\",\"n\":", body_seq_.fetch_add(1));
          if (options_.body_padding > 0) {
            absl::StrAppend(&body, ",\"pad\":\"", std::string(options_.body_padding, 'x'), "\"");
          }
          body += "}";
          item->mutable_put()->set_index(options_.index);
          item->mutable_put()->set_pk(key);
          item->mutable_put()->set_body(body);
          bodies.push_back(std::move(body));
        }
      }
      // Send, then wait for the acks with a bound: a watchdog cancels the
      // stream when the batch's ack does not come in time.
      absl::Time sent = absl::Now();
      pb::WriteAcks acks;
      bool got = false;
      CancelAfter(&ctx, options_.batch_timeout,
                  [&] { got = stream->Write(batch) && stream->Read(&acks); });
      absl::Duration latency = absl::Now() - sent;
      if (!got || acks.acks_size() != static_cast<int>(n)) {
        // Every item of the batch has an unknown outcome.
        absl::MutexLock l(&mu_);
        stats_.issued += n;
        stats_.stream_failures += 1;
        for (size_t i = 0; i < n; ++i) {
          retired.insert(live[i]);
          records_[live[i]].unknown = true;
          stats_.unknown += 1;
        }
        broken = true;
        break;
      }
      absl::MutexLock l(&mu_);
      stats_.issued += n;
      stats_.max_batch_latency = std::max(stats_.max_batch_latency, latency);
      stats_.batch_latencies_us.push_back(absl::ToInt64Microseconds(latency));
      stats_.batch_sent_ms.push_back(absl::ToUnixMillis(sent));
      int acked_items = 0;
      for (size_t i = 0; i < n; ++i)
        acked_items += acks.acks(static_cast<int>(i)).code() == 0 ? 1 : 0;
      stats_.batch_acked_items.push_back(acked_items);
      for (size_t i = 0; i < n; ++i) {
        const pb::WriteAck& ack = acks.acks(static_cast<int>(i));
        const std::string& key = live[i];
        KeyRecord& rec = records_[key];
        if (ack.code() == 0) {
          rec.acked = true;
          rec.deleted = deletes[i];
          rec.body = bodies[i];
          rec.version = ack.version();
          rec.writer = ack.writer();
          rec.acked_ops += 1;
          after_version[key] = ack.version();
          (deletes[i] ? stats_.acked_deletes : stats_.acked_puts) += 1;
          if (ack.degraded_groups_size() > 0) stats_.degraded += 1;
        } else if (DefiniteRefusal(static_cast<int>(ack.code())) || ack.version() == 0) {
          // An error ack carries the highest version sent for the item (DESIGN §4):
          // the next operation on the key is stamped above an attempt that may land.
          // Version 0: the item was never sent to a store (a lapsed lease, a hold
          // past its deadline before dispatch), so it cannot land: refused, and
          // the key stays judged (WriteAck.version).
          after_version[key] = std::max(after_version[key], ack.version());
          stats_.rejected += 1;
          stats_.error_codes[static_cast<int>(ack.code())] += 1;
        } else {
          rec.unknown = true;
          retired.insert(key);
          after_version[key] = std::max(after_version[key], ack.version());
          stats_.unknown += 1;
          stats_.error_codes[static_cast<int>(ack.code())] += 1;
        }
      }
      rotate = options_.rotate_workers;
    }
    if (!broken) {
      CancelAfter(&ctx, absl::Seconds(5), [&] {
        stream->WritesDone();
        (void)stream->Finish();
      });
      if (!rotate) break;
      worker = (worker + 1) % static_cast<int>(options_.worker_addresses.size());
      continue;
    }
    CancelAfter(&ctx, absl::Seconds(2), [&] { (void)stream->Finish(); });
    worker = (worker + 1) % static_cast<int>(options_.worker_addresses.size());
    absl::SleepFor(absl::Milliseconds(100));
  }
}

// ---- check ------------------------------------------------------------------

std::string CheckReport::Summary() const {
  std::string s = absl::StrCat("acknowledged=", acknowledged_writes, " keys_checked=", keys_checked,
                               " keys_unknown=", keys_unknown, " lost=", lost,
                               " resurrected=", resurrected, " mismatched=", mismatched,
                               " wrong_owner=", wrong_owner, " unreachable=", unreachable);
  for (const auto& f : failures) absl::StrAppend(&s, "\n  ", f);
  return s;
}

CheckReport EvaluatePromise(
    const std::map<std::string, KeyRecord>& records, const LiveRouting& routing,
    const std::map<std::string, std::map<uint32_t, ShardContents>>& contents,
    const std::set<std::string>& unreadable) {
  CheckReport r;
  r.unreachable = unreadable.size();
  for (const auto& n : unreadable) AddFailure(&r, absl::StrCat("node ", n, " could not be read"));

  // Owner sets per shard (all groups).
  std::vector<std::set<std::string>> owners(routing.shards);
  for (uint32_t s = 0; s < routing.shards && s < routing.owners.size(); ++s) {
    for (const auto& [g, nodes] : routing.owners[s]) owners[s].insert(nodes.begin(), nodes.end());
  }

  // 1. Every owner of each key holds exactly the last acknowledged operation.
  for (const auto& [key, rec] : records) {
    r.acknowledged_writes += rec.acked_ops;
    if (rec.unknown) {
      ++r.keys_unknown;
      continue;
    }
    if (!rec.acked) continue;
    ++r.keys_checked;
    uint32_t shard = ShardForKey(key, routing.shards);
    for (const auto& node : owners[shard]) {
      if (unreadable.count(node)) continue;
      const StoredDoc* doc = nullptr;
      auto n = contents.find(node);
      if (n != contents.end()) {
        auto sh = n->second.find(shard);
        if (sh != n->second.end()) {
          auto d = sh->second.find(key);
          if (d != sh->second.end()) doc = &d->second;
        }
      }
      const bool live = doc != nullptr && !doc->tombstone;
      const std::string where = absl::StrCat("key ", key, " shard ", shard, " on ", node, ": ");
      if (rec.deleted) {
        if (live) {
          ++r.resurrected;
          AddFailure(&r, absl::StrCat(where, "deleted at version ", rec.version,
                                      " but holds a document at version ", doc->version.hlc,
                                      " body ", doc->body));
        } else if (doc != nullptr && doc->version.hlc > rec.version) {
          ++r.mismatched;
          AddFailure(&r, absl::StrCat(where, "tombstone at ", doc->version.hlc,
                                      " newer than the last ack ", rec.version));
        }
        continue;
      }
      if (!live) {
        ++r.lost;
        AddFailure(&r, absl::StrCat(where, "lost put at version ", rec.version,
                                    doc == nullptr
                                        ? " (absent)"
                                        : absl::StrCat(" (tombstone at ", doc->version.hlc, ")")));
      } else if (doc->version.hlc != rec.version || doc->version.writer != rec.writer ||
                 doc->body != rec.body) {
        if (doc->version.hlc < rec.version) {
          ++r.lost;
          AddFailure(&r, absl::StrCat(where, "holds older version ", doc->version.hlc,
                                      " instead of ", rec.version));
        } else {
          ++r.mismatched;
          AddFailure(&r, absl::StrCat(where, "holds version ", doc->version.hlc, "/",
                                      doc->version.writer, " body ", doc->body, " instead of ",
                                      rec.version, "/", rec.writer, " body ", rec.body));
        }
      }
    }
  }

  // 2. Every node holds exactly its shards; every key sits in its own shard.
  for (const auto& [node, shards] : contents) {
    for (const auto& [shard, docs] : shards) {
      if (docs.empty()) continue;
      if (shard >= routing.shards || !owners[shard].count(node)) {
        ++r.wrong_owner;
        AddFailure(&r, absl::StrCat("node ", node, " holds shard ", shard, " (", docs.size(),
                                    "+ entries) but is not one of its owners"));
        continue;
      }
      for (const auto& [pk, doc] : docs) {
        if (ShardForKey(pk, routing.shards) != shard) {
          ++r.wrong_owner;
          AddFailure(&r, absl::StrCat("node ", node, " shard ", shard, " holds key ", pk,
                                      " of shard ", ShardForKey(pk, routing.shards)));
        }
      }
    }
  }
  return r;
}

namespace {

absl::Status Rpc(const grpc::Status& s) { return FromGrpc(s); }

template <typename Fn>
absl::Status WithDeadline(Fn fn) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return Rpc(fn(&ctx));
}

absl::Status WaitQuiescentVia(pb::Coordinator::Stub* coord, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::string last = "no answer";
  while (absl::Now() < deadline) {
    pb::GetStatusResponse st;
    absl::Status s = WithDeadline(
        [&](grpc::ClientContext* c) { return coord->GetStatus(c, pb::GetStatusRequest(), &st); });
    if (s.ok()) {
      bool running = false;
      for (const auto& p : st.plans()) {
        running |= p.state() != pb::PLAN_DONE && p.state() != pb::PLAN_FAILED &&
                   p.state() != pb::PLAN_ABORTED;
      }
      if (!running && st.pending_recovery_passes() == 0) return absl::OkStatus();
      last = absl::StrCat("plans open: ", running,
                          ", recovery passes pending: ", st.pending_recovery_passes());
    } else {
      last = s.ToString();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("cluster not quiescent: ", last));
}

}  // namespace

absl::StatusOr<CheckReport> CheckPromise(const std::map<std::string, KeyRecord>& records,
                                         const CheckOptions& options) {
  if (options.coordinator == nullptr) return absl::InvalidArgumentError("coordinator: required");
  if (options.wait_quiescent) {
    absl::SleepFor(options.settle);
    if (absl::Status s = WaitQuiescentVia(options.coordinator, options.quiesce_timeout); !s.ok()) {
      return s;
    }
  }
  int64_t ae_repaired = -1;
  if (!options.coordinator_address.empty()) {
    auto ae = pb::AntiEntropy::NewStub(MakeChannel(options.coordinator_address));
    pb::AntiEntropyStatusResponse runs;
    if (WithDeadline([&](grpc::ClientContext* c) {
          return ae->Status(c, pb::AntiEntropyStatusRequest(), &runs);
        }).ok()) {
      ae_repaired = 0;
      for (const auto& r : runs.runs()) ae_repaired += static_cast<int64_t>(r.repaired());
    }
  }
  pb::GetIndexRequest ireq;
  ireq.set_name(options.index);
  pb::GetIndexResponse index;
  if (absl::Status s = WithDeadline(
          [&](grpc::ClientContext* c) { return options.coordinator->GetIndex(c, ireq, &index); });
      !s.ok()) {
    return s;
  }
  LiveRouting routing;
  routing.index = index.index().name();
  routing.generation = index.index().live_generation();
  for (const auto& g : index.routes()) {
    if (g.generation() != routing.generation) continue;
    routing.shards = g.shards();
    routing.owners.resize(g.shards());
    for (const auto& route : g.routes()) {
      if (route.shard() >= g.shards()) continue;
      for (const auto& go : route.owners()) {
        routing.owners[route.shard()][go.group()].assign(go.nodes().begin(), go.nodes().end());
      }
    }
  }
  if (routing.shards == 0) {
    return absl::NotFoundError(absl::StrCat("index ", options.index, ": no live routing table"));
  }
  pb::GetStatusResponse st;
  if (absl::Status s = WithDeadline([&](grpc::ClientContext* c) {
        return options.coordinator->GetStatus(c, pb::GetStatusRequest(), &st);
      });
      !s.ok()) {
    return s;
  }
  std::map<std::string, std::map<uint32_t, ShardContents>> contents;
  std::set<std::string> unreadable;
  for (const auto& node : st.nodes()) {
    if (options.skip_nodes.count(node.id())) continue;
    // A removed node must hold nothing; it is read like the others when reachable.
    std::string address = node.address();
    auto ov = options.address_override.find(node.id());
    if (ov != options.address_override.end()) address = ov->second;
    auto store = MakeStoreAdapter(node.store().empty() ? "redis" : node.store(), address,
                                  HarnessStoreOptions(address));
    if (!store.ok()) {
      unreadable.insert(node.id());
      continue;
    }
    bool failed = false;
    for (uint32_t s = 0; s < routing.shards && !failed; ++s) {
      ShardKey key{routing.index, routing.generation, s};
      ShardContents& docs = contents[node.id()][s];
      std::string after;
      while (true) {
        auto page = (*store)->Scan(key, kAnyEpoch, after, 1000);
        if (!page.ok()) {
          failed = true;
          break;
        }
        for (auto& d : *page) {
          after = d.pk;
          docs.emplace(d.pk, std::move(d));
        }
        if (page->size() < 1000) break;
      }
    }
    if (failed) {
      if (node.status() == pb::NODE_REMOVED || node.status() == pb::NODE_FAILED) {
        contents.erase(node.id());  // gone for good: nothing to judge
      } else {
        unreadable.insert(node.id());
      }
    }
  }
  CheckReport report = EvaluatePromise(records, routing, contents, unreadable);
  report.ae_repaired = ae_repaired;
  return report;
}

}  // namespace miroir::testing
