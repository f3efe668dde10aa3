// reshard_driver: the resharding load study, part (b) (issue 6 item 8): scenario 1
// scaled down and MEASURED on a local fleet (real redis-server nodes, coordinator
// and workers started by the test harness), beside the DESIGN §7 model computed
// for the same small configuration with the same code as part (a)
// (miroir::ShardForKey, miroir::OwnerTable, coordinator::EstimateReshard).
//
// One run: RG 2 × 3 nodes, RF 1, S 64; loads --docs documents through the public
// write path (the one TestWriter); runs a second TestWriter at --rate writes/s
// (puts and deletes) throughout; `Reshard.Start` 64 → 128 at --throttle docs/s;
// holds a window in retention (both generations, reverse dual-write); `Complete`;
// then checks the promise (CheckPromise) on every acknowledged write of both
// writers.
//
// Node writes are counted from redis `INFO commandstats`: the apply script
// (worker/stores/redis_scripts.h, kApplySrc) issues exactly one HSET per
// document write it applies (put or tombstone) and none for a retry of the same
// version or an older one, and nothing else in miroir issues HSET; redis counts
// commands run inside scripts. So Δ`cmdstat_hset.calls` per node = documents
// written into that node, whichever generation and whoever wrote them (client
// write, backfill, catch-up, final delta).
//
// Prints Markdown (bench/reshard_load.sh --measure puts it into
// docs/benchmarks/resharding-load.md). Timings belong here, never in tests.
#include <grpcpp/grpcpp.h>
#include <hiredis/hiredis.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/reshard_names.h"
#include "common/routing.h"
#include "coordinator/reshard_machine.h"
#include "harness/fleet.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"
#include "miroir/v1/reshard.grpc.pb.h"
#include "worker/stores/redis_store.h"

namespace {

namespace pb = ::miroir::v1;
using miroir::testing::Fleet;
using miroir::testing::FleetOptions;

void Log(const std::string& s) {
  std::fprintf(stderr, "[reshard_driver] %s\n", s.c_str());
  std::fflush(stderr);
}

// ---- per-node counters over raw hiredis ----

struct NodeConn {
  std::string id;
  redisContext* c = nullptr;
};

uint64_t InfoField(redisContext* c, const char* section, const std::string& prefix) {
  auto* r = static_cast<redisReply*>(redisCommand(c, "INFO %s", section));
  uint64_t v = 0;
  if (r != nullptr && r->type == REDIS_REPLY_STRING) {
    std::string s(r->str, r->len);
    size_t p = s.find(prefix);
    if (p != std::string::npos) {
      p += prefix.size();
      size_t e = p;
      while (e < s.size() && isdigit(static_cast<unsigned char>(s[e]))) ++e;
      (void)absl::SimpleAtoi(s.substr(p, e - p), &v);
    }
  }
  if (r != nullptr) freeReplyObject(r);
  return v;
}

struct Sample {
  int64_t t_ms = 0;
  std::vector<uint64_t> hset;  // per node, cumulative
  std::vector<uint64_t> mem;   // per node used_memory
  uint64_t acked = 0;          // live writer
};

class Sampler {
 public:
  Sampler(Fleet& f, miroir::testing::TestWriter* writer) : writer_(writer) {
    for (const auto& id : f.node_ids()) {
      const std::string a = f.redis(id).address();
      int port = std::stoi(a.substr(a.find(':') + 1));
      conns_.push_back({id, redisConnect("127.0.0.1", port)});
    }
  }
  ~Sampler() {
    Stop();
    for (auto& n : conns_) redisFree(n.c);
  }
  const std::vector<NodeConn>& nodes() const { return conns_; }
  // The loop thread and the main thread both sample: one hiredis context per
  // node is not thread-safe, so Take() is serialised.
  Sample Take() {
    std::lock_guard<std::mutex> l(take_mu_);
    Sample s;
    s.t_ms = absl::ToUnixMillis(absl::Now());
    for (auto& n : conns_) {
      s.hset.push_back(InfoField(n.c, "commandstats", "cmdstat_hset:calls="));
      s.mem.push_back(InfoField(n.c, "memory", "used_memory:"));
    }
    s.acked = writer_ != nullptr ? writer_->stats().acked() : 0;
    return s;
  }
  void StartLoop() {
    thread_ = std::thread([this] {
      while (!stop_) {
        Sample s = Take();
        {
          std::lock_guard<std::mutex> l(mu_);
          samples_.push_back(std::move(s));
        }
        absl::SleepFor(absl::Seconds(1));
      }
    });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Sample> samples() {
    std::lock_guard<std::mutex> l(mu_);
    return samples_;
  }

 private:
  miroir::testing::TestWriter* writer_;
  std::vector<NodeConn> conns_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::mutex take_mu_;
  std::vector<Sample> samples_;
};

uint64_t Sum(const std::vector<uint64_t>& v) {
  uint64_t s = 0;
  for (auto x : v) s += x;
  return s;
}

double Cv(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  var /= static_cast<double>(v.size());
  return mean == 0 ? 0 : std::sqrt(var) / mean;
}

std::string MB(double b) { return absl::StrFormat("%.1f MB", b / 1e6); }

// Documents / bytes per shard of one generation, summed over every node.
struct GenStats {
  std::vector<double> docs;
  double bytes = 0, tombstones = 0;
};
absl::StatusOr<GenStats> ReadGen(Fleet& f, uint64_t gen, uint32_t shards) {
  GenStats g;
  g.docs.assign(shards, 0);
  for (const auto& id : f.node_ids()) {
    auto store = miroir::RedisStore::Create(f.redis(id).address(), miroir::StoreOptions{});
    if (!store.ok()) return store.status();
    for (uint32_t s = 0; s < shards; ++s) {
      auto st = (*store)->Stats(miroir::ShardKey{"products", gen, s});
      if (!st.ok()) return st.status();
      g.docs[s] += static_cast<double>(st->documents);
      g.bytes += static_cast<double>(st->bytes);
      g.tombstones += static_cast<double>(st->tombstones);
    }
  }
  return g;
}

struct Options {
  int docs = 200000;
  int doc_bytes = 1000;
  double rate = 100;
  uint64_t throttle = 10000;
  int window_s = 20;
  int live_keys = 5000;
};

int Run(const Options& o) {
  const uint32_t kOld = 64, kNew = 128;
  miroir::testing::TempDir tmp("bench-reshard");
  FleetOptions fo;
  fo.group_sizes = {3, 3};
  fo.workers = 2;
  fo.indexes = {{"products", kOld, 1}};
  YAML::Node rs;
  rs["retain_old_index_hours"] = 48;  // hold retention until Complete
  fo.coordinator_config["resharding"] = rs;
  // Anti-entropy off: its scans compete for the 2 cores and are not part of the
  // resharding load being measured (its repairs would be HSETs too, though none
  // are expected).
  fo.coordinator_config["anti_entropy"]["enabled"] = false;
  auto fleet = Fleet::Start(tmp.path(), fo);
  if (!fleet.ok()) {
    Log("fleet: " + fleet.status().ToString());
    return 1;
  }
  Fleet& f = **fleet;
  auto stub = pb::Reshard::NewStub(
      grpc::CreateChannel(f.coordinator_address(), grpc::InsecureChannelCredentials()));

  // Body: the writer's JSON (key, run id, sequence) plus padding up to ~doc_bytes.
  const int padding = std::max(0, o.doc_bytes - 110);

  // ---- load through the public write path ----
  miroir::testing::WriterOptions lo = f.WriterOptionsFor("products");
  lo.key_prefix = "doc:";
  lo.keys = o.docs;
  lo.load_first = true;
  lo.max_ops = o.docs;
  lo.delete_fraction = 0;
  lo.streams = 8;
  lo.batch_size = 100;
  lo.body_padding = padding;
  lo.max_duration = absl::Minutes(10);
  lo.batch_timeout = absl::Seconds(30);
  lo.seed = 1;
  miroir::testing::TestWriter load(lo);
  Log(absl::StrCat("loading ", o.docs, " documents"));
  const absl::Time l0 = absl::Now();
  if (absl::Status s = load.Run(); !s.ok()) {
    Log("load: " + s.ToString());
    return 1;
  }
  const double load_s = absl::ToDoubleSeconds(absl::Now() - l0);
  const auto load_stats = load.stats();
  Log(absl::StrFormat("loaded %d acked in %.1f s", load_stats.acked(), load_s));

  // ---- the live writer ----
  miroir::testing::WriterOptions wo = f.WriterOptionsFor("products");
  wo.key_prefix = "w:";
  wo.keys = o.live_keys;
  wo.delete_fraction = 0.2;
  wo.streams = 2;
  wo.batch_size = 2;
  wo.ops_per_second = o.rate;
  wo.body_padding = padding;
  wo.max_duration = absl::Minutes(30);
  wo.seed = 2;
  miroir::testing::TestWriter writer(wo);
  if (absl::Status s = writer.Start(); !s.ok()) {
    Log("writer: " + s.ToString());
    return 1;
  }
  Sampler sampler(f, &writer);
  absl::SleepFor(absl::Seconds(3));  // steady state
  sampler.StartLoop();
  // Window before: node writes per client write with no reshard.
  const Sample b0 = sampler.Take();
  absl::SleepFor(absl::Seconds(o.window_s));
  const Sample b1 = sampler.Take();
  const double before_ratio = static_cast<double>(Sum(b1.hset) - Sum(b0.hset)) /
                              static_cast<double>(std::max<uint64_t>(1, b1.acked - b0.acked));
  const double before_rate =
      static_cast<double>(b1.acked - b0.acked) * 1000.0 / static_cast<double>(b1.t_ms - b0.t_ms);
  const uint64_t mem_before = Sum(b1.mem);
  {
    const auto st = writer.stats();
    Log(absl::StrFormat("writer: puts %d deletes %d rejected %d unknown %d degraded %d",
                        st.acked_puts, st.acked_deletes, st.rejected, st.unknown, st.degraded));
  }
  Log(absl::StrFormat("before: %.3f node writes/client write at %.1f w/s; used_memory %s",
                      before_ratio, before_rate, MB(mem_before)));

  // ---- reshard 64 -> 128 ----
  pb::ReshardStartResponse started;
  {
    pb::ReshardStartRequest req;
    req.set_index("products");
    req.set_new_shards(kNew);
    req.set_throttle_docs_per_s(o.throttle);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status st = stub->Start(&ctx, req, &started);
    if (!st.ok()) {
      Log("start: " + st.error_message());
      return 1;
    }
  }
  const int64_t start_ms = absl::ToUnixMillis(absl::Now());
  auto status = [&]() -> absl::StatusOr<pb::ReshardStatusResponse> {
    pb::ReshardIndexRequest req;
    req.set_index("products");
    pb::ReshardStatusResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status st = stub->Status(&ctx, req, &resp);
    if (!st.ok()) return absl::InternalError(st.error_message());
    return resp;
  };
  auto wait_for = [&](const std::string& want,
                      absl::Duration timeout) -> absl::StatusOr<pb::ReshardStatusResponse> {
    const absl::Time deadline = absl::Now() + timeout;
    std::string last;
    while (absl::Now() < deadline) {
      auto st = status();
      if (st.ok()) {
        const auto& r = st->reshard();
        if (miroir::ReshardStateName(r.state()) != last) {
          last = miroir::ReshardStateName(r.state());
          Log(absl::StrCat("state ", last, " backfilled ", r.documents_backfilled()));
        }
        if (last == want) return *st;
        if (r.state() == pb::RESHARD_FAILED || r.state() == pb::RESHARD_ABORTED) {
          return absl::InternalError(absl::StrCat(last, ": ", r.message()));
        }
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return absl::DeadlineExceededError("waiting for " + want);
  };
  auto ret = wait_for("retention", absl::Minutes(12));
  if (!ret.ok()) {
    Log(ret.status().ToString());
    return 1;
  }
  const pb::ReshardRecord rec = ret->reshard();
  std::map<std::string, int64_t> entered;  // first entry into each state
  for (const auto& e : ret->events()) {
    if (e.plan_id() != rec.id()) continue;
    if (!entered.count(e.to())) entered[e.to()] = e.time_ms();
  }
  for (const auto& [k, v] : entered) Log(absl::StrCat("entered ", k, " at +", v - start_ms, " ms"));

  // ---- retention: both generations, reverse dual-write; nothing copying ----
  absl::SleepFor(absl::Seconds(2));
  const Sample d0 = sampler.Take();
  absl::SleepFor(absl::Seconds(o.window_s));
  const Sample d1 = sampler.Take();
  const double dual_ratio = static_cast<double>(Sum(d1.hset) - Sum(d0.hset)) /
                            static_cast<double>(std::max<uint64_t>(1, d1.acked - d0.acked));
  const uint64_t mem_retention = Sum(d1.mem);
  auto old_gen = ReadGen(f, rec.old_generation(), kOld);
  auto new_gen = ReadGen(f, rec.new_generation(), kNew);
  if (!old_gen.ok() || !new_gen.ok()) {
    Log("shard stats failed");
    return 1;
  }
  Log(absl::StrFormat("retention: %.3f node writes/client write; used_memory %s", dual_ratio,
                      MB(mem_retention)));

  // ---- complete ----
  {
    pb::ReshardIndexRequest req;
    req.set_index("products");
    pb::ReshardStatusResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status st = stub->Complete(&ctx, req, &resp);
    if (!st.ok()) {
      Log("complete: " + st.error_message());
      return 1;
    }
  }
  const int64_t complete_ms = absl::ToUnixMillis(absl::Now());
  auto done = wait_for("done", absl::Minutes(5));
  if (!done.ok()) {
    Log(done.status().ToString());
    return 1;
  }
  const int64_t done_ms = absl::ToUnixMillis(absl::Now());
  absl::SleepFor(absl::Seconds(2));
  const Sample a1 = sampler.Take();
  const uint64_t mem_after = Sum(a1.mem);
  sampler.Stop();
  Log("stopping the writer");
  writer.Stop();
  writer.Wait();
  Log("writer stopped; checking the promise");
  const auto ws = writer.stats();
  const std::vector<Sample> samples = sampler.samples();

  // ---- the promise, over both writers' acknowledged writes ----
  auto records = load.records();
  for (auto& [k, v] : writer.records()) records[k] = v;
  auto report = miroir::testing::CheckPromise(records, f.CheckOptionsFor("products"));
  if (!report.ok()) {
    Log("check: " + report.status().ToString());
    return 1;
  }
  Log(report->Summary());

  // Time series (stderr): per second, fleet node writes/s and client writes/s.
  for (size_t i = 1; i < samples.size(); ++i) {
    const double dt = static_cast<double>(samples[i].t_ms - samples[i - 1].t_ms) / 1000.0;
    std::string per;
    for (size_t n = 0; n < samples[i].hset.size(); ++n) {
      absl::StrAppend(&per, " ", (samples[i].hset[n] - samples[i - 1].hset[n]));
    }
    Log(absl::StrFormat("t+%6lld ms node writes/s %7.0f client %5.0f |%s",
                        static_cast<long long>(samples[i].t_ms - start_ms),
                        (Sum(samples[i].hset) - Sum(samples[i - 1].hset)) / dt,
                        (samples[i].acked - samples[i - 1].acked) / dt, per.c_str()));
  }

  // ---- derived measurements ----
  const int64_t t_bf = entered.count("backfill") ? entered["backfill"] : 0;
  const int64_t t_cu = entered.count("catching_up") ? entered["catching_up"] : 0;
  const int64_t t_vf = entered.count("verify") ? entered["verify"] : 0;
  const int64_t t_sw = entered.count("swap_paused") ? entered["swap_paused"] : 0;
  const int64_t t_rt = entered.count("retention") ? entered["retention"] : 0;
  const size_t nn = sampler.nodes().size();
  std::vector<double> node_max(nn, 0), node_mean(nn, 0);
  double sum_max = 0, sum_mean = 0;
  int intervals = 0;
  double peak_mem = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    peak_mem = std::max(peak_mem, static_cast<double>(Sum(samples[i].mem)));
    if (i == 0) continue;
    const Sample& p = samples[i - 1];
    const Sample& c = samples[i];
    // Intervals wholly inside the backfill state.
    if (p.t_ms < t_bf || c.t_ms > t_cu) continue;
    const double dt = static_cast<double>(c.t_ms - p.t_ms) / 1000.0;
    double sum = 0;
    for (size_t n = 0; n < nn; ++n) {
      const double r = static_cast<double>(c.hset[n] - p.hset[n]) / dt;
      node_max[n] = std::max(node_max[n], r);
      node_mean[n] += r;
      sum += r;
    }
    sum_max = std::max(sum_max, sum);
    sum_mean += sum;
    ++intervals;
  }
  size_t busiest = 0;
  for (size_t n = 0; n < nn; ++n) {
    if (intervals > 0) node_mean[n] /= intervals;
    if (node_max[n] > node_max[busiest]) busiest = n;
  }
  size_t busiest_avg = 0;
  for (size_t n = 0; n < nn; ++n) {
    if (node_mean[n] > node_mean[busiest_avg]) busiest_avg = n;
  }
  if (intervals > 0) sum_mean /= intervals;
  // Node writes in the whole backfill state, from the samples bracketing it.
  const double backfill_s = static_cast<double>(t_cu - t_bf) / 1000.0;
  // Writer: max batch latency overall during the reshard and around the swap.
  double max_batch_ms = 0, max_swap_batch_ms = 0;
  std::vector<double> swap_batches;
  for (size_t i = 0; i < ws.batch_latencies_us.size(); ++i) {
    const double ms = static_cast<double>(ws.batch_latencies_us[i]) / 1000.0;
    const int64_t sent = ws.batch_sent_ms[i];
    if (sent >= start_ms && sent <= t_rt) max_batch_ms = std::max(max_batch_ms, ms);
    if (sent + static_cast<int64_t>(ms) >= t_sw - 1000 && sent <= t_rt + 1000) {
      max_swap_batch_ms = std::max(max_swap_batch_ms, ms);
      swap_batches.push_back(ms);
    }
  }
  double backfill_achieved_rate = 0;
  {
    // Reshard-wide client writes/s while it ran (start -> retention).
    uint64_t a0 = 0, a1c = 0;
    int64_t ta = 0, tb = 0;
    for (const auto& s : samples) {
      if (s.t_ms <= start_ms) {
        a0 = s.acked;
        ta = s.t_ms;
      }
      if (s.t_ms <= t_rt) {
        a1c = s.acked;
        tb = s.t_ms;
      }
    }
    if (tb > ta) backfill_achieved_rate = static_cast<double>(a1c - a0) * 1000.0 / (tb - ta);
  }

  // ---- the model for the same configuration (as part (a)) ----
  std::vector<miroir::GroupNodes> topo;
  for (int g = 0; g < 2; ++g) {
    miroir::GroupNodes gn;
    gn.group = absl::StrCat("g", g);
    for (int i = 0; i < 3; ++i) gn.nodes.push_back(absl::StrCat("r", g * 3 + i));
    topo.push_back(gn);
  }
  const miroir::OwnerTable old_t(kOld, topo, 1), new_t(kNew, topo, 1);
  std::vector<double> m_old(kOld, 0), m_new(kNew, 0);
  std::map<std::string, double> n_old, n_new;
  for (int i = 0; i < o.docs; ++i) {
    const std::string pk = absl::StrCat("doc:", i);
    const uint32_t so = miroir::ShardForKey(pk, kOld), sn = miroir::ShardForKey(pk, kNew);
    m_old[so] += 1;
    m_new[sn] += 1;
    for (const auto& n : old_t.WriteTargets(so)) n_old[n] += 1;
    for (const auto& n : new_t.WriteTargets(sn)) n_new[n] += 1;
  }
  const double mean_body = load_stats.acked() > 0 && old_gen->docs.size() > 0
                               ? old_gen->bytes / std::max(1.0,
                                                           [&] {
                                                             double d = 0;
                                                             for (double x : old_gen->docs) d += x;
                                                             return d;
                                                           }())
                               : 0;
  miroir::coordinator::ReshardEstimateInput in;
  in.documents = static_cast<uint64_t>(o.docs);
  in.bytes = static_cast<uint64_t>(o.docs * mean_body);
  in.rf = 1;
  in.groups = 2;
  in.backfill_dps = static_cast<double>(o.throttle);
  in.write_dps = o.rate;
  auto est = miroir::coordinator::EstimateReshard(in);
  if (!est.ok()) {
    Log("estimate: " + est.status().ToString());
    return 1;
  }
  const double k = o.docs;
  std::string m_busy;
  double m_busy_w = 0;
  for (const auto& [n, c] : n_new) {
    const double w = static_cast<double>(o.throttle) * c / k + o.rate * (n_old[n] + c) / k;
    if (w > m_busy_w) {
      m_busy_w = w;
      m_busy = n;
    }
  }
  // The same per-node share at the backfill rate actually achieved.
  const double achieved_dps = backfill_s > 0 ? rec.documents_backfilled() / backfill_s : 0;
  double m_busy_achieved = 0;
  for (const auto& [n, c] : n_new) {
    m_busy_achieved = std::max(m_busy_achieved, achieved_dps * c / k + o.rate * (n_old[n] + c) / k);
  }
  // Worst moment as part (a): backfill_concurrency (default 4) consecutive live
  // shards copied at once, the throttle split over them by document count.
  std::vector<std::map<std::string, double>> old_to_node(kOld);
  for (int i = 0; i < o.docs; ++i) {
    const std::string pk = absl::StrCat("doc:", i);
    for (const auto& n : new_t.WriteTargets(miroir::ShardForKey(pk, kNew))) {
      old_to_node[miroir::ShardForKey(pk, kOld)][n] += 1;
    }
  }
  double m_worst = 0;
  for (uint32_t st = 0; st < kOld; ++st) {
    std::map<std::string, double> hits;
    double docs_in = 0;
    for (uint32_t j = 0; j < 4; ++j) {
      const uint32_t sh = (st + j) % kOld;
      docs_in += m_old[sh];
      for (const auto& [n, c] : old_to_node[sh]) hits[n] += c;
    }
    for (const auto& [n, c] : n_new) {
      const double bf = docs_in > 0 ? static_cast<double>(o.throttle) * hits[n] / docs_in : 0;
      m_worst = std::max(m_worst, bf + o.rate * (n_old[n] + c) / k);
    }
  }
  const double old_docs_total = [&] {
    double d = 0;
    for (double x : old_gen->docs) d += x;
    return d;
  }();
  const double new_docs_total = [&] {
    double d = 0;
    for (double x : new_gen->docs) d += x;
    return d;
  }();

  // ---- report ----
  auto ms_between = [](int64_t a, int64_t b) {
    return (a > 0 && b > 0) ? absl::StrFormat("%.1f s", (b - a) / 1000.0) : std::string("n/a");
  };
  std::printf("### Run\n\n");
  std::printf(
      "RG 2 × 3 nodes (r0–r2 in g0, r3–r5 in g1), RF 1, 2 workers, one coordinator, all on "
      "this machine (redis-server, appendonly yes); anti-entropy off. Index `products`, "
      "S = %u → %u. Load: %d documents `doc:0`…`doc:%d` through `DataPlane.Write` (TestWriter, "
      "8 streams × 100 docs/batch) in %.1f s (%.0f docs/s); mean body %.0f B (shard stats "
      "bytes / documents). Live writer: a second TestWriter on %d keys `w:*`, 80 %% puts / "
      "20 %% deletes, target %.0f writes/s, 2 streams × 2 writes/batch, from before the "
      "reshard to after `complete` (measured %.1f writes/s before, %.1f while the reshard "
      "ran). `Reshard.Start` with `throttle_docs_per_s` = **%llu**; retention held %d s "
      "for the dual-write window, then `Complete`.\n\n",
      kOld, kNew, o.docs, o.docs - 1, load_s, load_s > 0 ? o.docs / load_s : 0.0, mean_body,
      o.live_keys, o.rate, before_rate, backfill_achieved_rate,
      static_cast<unsigned long long>(o.throttle), o.window_s + 2);
  std::printf("### Measured vs. model (same configuration)\n\n");
  std::printf("| quantity | measured | model |\n|---|---|---|\n");
  const double steady_model = k * mean_body * 2;
  std::printf(
      "| redis `used_memory`, sum of 6 nodes: before / peak (retention) / after complete "
      "| %s / %s / %s | — |\n",
      MB(mem_before).c_str(), MB(mem_retention).c_str(), MB(mem_after).c_str());
  std::printf("| highest 1 s sample of that sum during the run | %s | — |\n", MB(peak_mem).c_str());
  std::printf(
      "| **storage amplification, used_memory** (retention / before) | **%.2f×** | %.2f× "
      "(peak %s / steady %s of bodies) |\n",
      static_cast<double>(mem_retention) / mem_before,
      static_cast<double>(est->storage_peak_bytes) / steady_model,
      MB(static_cast<double>(est->storage_peak_bytes)).c_str(), MB(steady_model).c_str());
  std::printf(
      "| storage amplification, shard stats body bytes (old + new gen) / old gen, in "
      "retention | %.2f× (%s + %s) | 2.00× |\n",
      (old_gen->bytes + new_gen->bytes) / old_gen->bytes, MB(old_gen->bytes).c_str(),
      MB(new_gen->bytes).c_str());
  std::printf("| after complete / before (used_memory) | %.2f× | 1.00× |\n",
              static_cast<double>(mem_after) / mem_before);
  std::printf("| node writes per client write, before (%d s window) | %.3f | 2.000 |\n", o.window_s,
              before_ratio);
  std::printf(
      "| node writes per client write, dual-write (%d s window in retention: reverse "
      "dual-write, nothing copying) | %.3f | 4.000 |\n",
      o.window_s, dual_ratio);
  std::printf("| **dual-write amplification** | **%.2f×** | 2.00× |\n", dual_ratio / before_ratio);
  std::printf(
      "| **peak node writes/s, fleet** (max 1 s sample of the sum, in backfill) | **%.0f** "
      "| %.0f (EstimateReshard at the throttle) |\n",
      sum_max, est->peak_node_writes_per_s);
  std::printf(
      "| mean node writes/s, fleet, over the backfill | %.0f | %.0f at the achieved "
      "backfill rate (%.0f docs/s × RF × RG + 2 × w × RF × RG) |\n",
      sum_mean, achieved_dps * 2 + 2 * o.rate * 2, achieved_dps);
  std::printf(
      "| **busiest node, max 1 s sample** | **%.0f** (%s) | %.0f (worst moment: 4 "
      "consecutive live shards at once, at the throttle) |\n",
      node_max[busiest], sampler.nodes()[busiest].id.c_str(), m_worst);
  std::printf(
      "| busiest node, mean over the backfill | %.0f (%s) | %.0f at the throttle (%s), "
      "%.0f at the achieved rate |\n",
      node_mean[busiest_avg], sampler.nodes()[busiest_avg].id.c_str(), m_busy_w, m_busy.c_str(),
      m_busy_achieved);
  std::printf("| per node max 1 s sample, r0…r5 |");
  for (size_t n = 0; n < nn; ++n) std::printf("%s %.0f", n ? "," : "", node_max[n]);
  std::printf(" | — |\n");
  std::printf(
      "| **backfill duration** (event `backfill` → `catching_up`) | **%s** | %.1f s "
      "(docs / throttle) |\n",
      ms_between(t_bf, t_cu).c_str(), est->duration_s);
  std::printf(
      "| documents copied into the shadow (all passes) / achieved backfill docs/s | %llu "
      "/ %.0f | %d / %llu |\n",
      static_cast<unsigned long long>(rec.documents_backfilled()), achieved_dps, o.docs,
      static_cast<unsigned long long>(o.throttle));
  std::printf("| catch-up (`catching_up` → `verify`), %u passes | %s | — |\n",
              rec.catch_up_passes(), ms_between(t_cu, t_vf).c_str());
  std::printf("| verify (`verify` → `swap_paused`), %u rounds, %llu mismatches | %s | — |\n",
              rec.verify_rounds(), static_cast<unsigned long long>(rec.verify_mismatches()),
              ms_between(t_vf, t_sw).c_str());
  std::printf("| swap (`swap_paused` → `retention`) | %s | — |\n", ms_between(t_sw, t_rt).c_str());
  std::printf("| start → retention, total | %s | — |\n", ms_between(start_ms, t_rt).c_str());
  std::printf("| complete → done (old generation dropped) | %s | — |\n",
              ms_between(complete_ms, done_ms).c_str());
  std::printf(
      "| **swap write stall** (ReshardRecord.stall_ms, pause → flip), %u retries | "
      "**%llu ms** | — |\n",
      rec.stall_retries(), static_cast<unsigned long long>(rec.stall_ms()));
  std::printf(
      "| writer's max batch latency around the swap (±1 s) / during the whole reshard | "
      "%.1f ms / %.1f ms | — |\n",
      max_swap_batch_ms, max_batch_ms);
  std::printf(
      "| **per-shard CV of documents, S = 64** (old generation, shard stats, in "
      "retention) | **%.4f** | %.4f (the %d `doc:` keys through ShardForKey) |\n",
      Cv(old_gen->docs), Cv(m_old), o.docs);
  std::printf("| **per-shard CV of documents, S = 128** (new generation) | **%.4f** | %.4f |\n",
              Cv(new_gen->docs), Cv(m_new));
  std::printf(
      "| documents (live, all replicas) old / new generation in retention | %.0f / %.0f | "
      "— |\n",
      old_docs_total, new_docs_total);
  std::printf(
      "| acknowledged writes (load + live) / lost / resurrected / mismatched / wrong "
      "owner | %llu / **%llu** / **%llu** / %llu / %llu | 0 lost, 0 resurrected |\n\n",
      static_cast<unsigned long long>(report->acknowledged_writes),
      static_cast<unsigned long long>(report->lost),
      static_cast<unsigned long long>(report->resurrected),
      static_cast<unsigned long long>(report->mismatched),
      static_cast<unsigned long long>(report->wrong_owner));
  std::printf("State entries (ms after `Start`):");
  for (const char* s : {"shadow", "dual_write", "backfill", "catching_up", "verify", "swap_paused",
                        "swap_fenced", "swap_final_delta", "retention"}) {
    if (entered.count(s))
      std::printf(" %s +%lld;", s, static_cast<long long>(entered[s] - start_ms));
  }
  std::printf(" live writer: %llu acked, %llu unknown, %llu stream failures.\n",
              static_cast<unsigned long long>(ws.acked()),
              static_cast<unsigned long long>(ws.unknown),
              static_cast<unsigned long long>(ws.stream_failures));
  return report->ok() ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"reshard_driver: resharding load measured on a local fleet (issue 6 item 8b)"};
  Options o;
  app.add_option("--docs", o.docs, "documents loaded before the reshard");
  app.add_option("--doc-bytes", o.doc_bytes, "approximate body size");
  app.add_option("--rate", o.rate, "client writes/s during the reshard");
  app.add_option("--throttle", o.throttle, "backfill throttle, docs/s (0: config default)");
  app.add_option("--window", o.window_s, "seconds of each write-amplification window");
  app.add_option("--live-keys", o.live_keys, "keys of the live writer");
  CLI11_PARSE(app, argc, argv);
  return Run(o);
}
