// Write-path benchmark (issue 4): throughput and per-batch latency of
//   (a) plain pipelined SET of the same documents straight to redis-server (floor),
//   (b) the conditional-write Lua script straight to redis-server, same batching,
//   (c) the same documents through the worker's DataPlane.Write (gRPC over
//       loopback -> validate -> stamp -> route -> fan-out -> script), RG=1, RF=1,
//   (d) the same as (c) through the client library (client/, Session::Write:
//       validation, per-key tokens, a stream per call),
// all in one run against one redis-server (AOF appendfsync always), so the
// ratios compare like with like. The worker runs in-process (its real
// DataPlaneService, WritePath, Router and RedisStore; a lease that is always
// valid instead of a coordinator session), so the reported RSS covers worker +
// client.
//
// Usage: write_bench [--docs N] [--batch B] [--clients C] [--body BYTES]
#include <grpcpp/grpcpp.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/routing.h"
#include "common/version.h"
#include "miroir/client.h"
#include "worker/dataplane_service.h"
#include "worker/stores/redis_store.h"

extern char** environ;

namespace miroir {
namespace {

struct Args {
  int docs = 200000;
  int batch = 100;
  int clients = 4;
  int body = 200;
};

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

pid_t StartRedis(int port, const std::string& dir) {
  std::vector<std::string> args = {"redis-server",
                                   "--port",
                                   std::to_string(port),
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir,
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "yes",
                                   "--appendfsync",
                                   "always",
                                   "--maxmemory-policy",
                                   "noeviction",
                                   "--logfile",
                                   dir + "/redis.log"};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, "redis-server", nullptr, nullptr, argv.data(), environ) != 0) return -1;
  for (int i = 0; i < 200; ++i) {
    redisContext* c = redisConnect("127.0.0.1", port);
    if (c && !c->err) {
      redisFree(c);
      return pid;
    }
    if (c) redisFree(c);
    absl::SleepFor(absl::Milliseconds(25));
  }
  return pid;
}

void Flush(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  freeReplyObject(redisCommand(c, "FLUSHALL"));
  redisFree(c);
}

long RssKb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

struct Result {
  std::string name;
  double docs_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
};

// Runs `clients` threads; each sends its share of batches with `send(client, first, count)`
// and records per-batch latency.
template <typename Fn>
Result Measure(const std::string& name, const Args& a, Fn send) {
  std::vector<std::vector<double>> lat(a.clients);
  std::atomic<int> next{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> ts;
  for (int c = 0; c < a.clients; ++c) {
    ts.emplace_back([&, c] {
      while (true) {
        const int first = next.fetch_add(a.batch);
        if (first >= a.docs) break;
        const int count = std::min(a.batch, a.docs - first);
        const absl::Time t0 = absl::Now();
        send(c, first, count);
        lat[c].push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
      }
    });
  }
  for (auto& t : ts) t.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Result r;
  r.name = name;
  r.docs_per_s = a.docs / secs;
  r.p50_ms = all.empty() ? 0 : all[all.size() / 2];
  r.p99_ms = all.empty() ? 0 : all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return r;
}

// Always-valid lease: the benchmark measures the data path, not the session.
class BenchLink : public CoordinatorLink {
 public:
  bool LeaseValid() const override { return true; }
  void RefreshView(uint64_t) override {}
  void ReportMiss(const std::string&, const std::string&, uint64_t, uint32_t) override {}
};

int Main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (f == "--docs")
      a.docs = v;
    else if (f == "--batch")
      a.batch = v;
    else if (f == "--clients")
      a.clients = v;
    else if (f == "--body")
      a.body = v;
    else {
      std::fprintf(stderr, "error: unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  char tmpl[] = "/tmp/miroir-write-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  const int port = FreePort();
  const pid_t redis = StartRedis(port, dir);
  if (redis <= 0) {
    std::fprintf(stderr, "error: cannot start redis-server\n");
    return 1;
  }
  const std::string address = absl::StrCat("127.0.0.1:", port);
  const uint32_t kShards = 16;
  const std::string pad(std::max(0, a.body - 20), 'x');
  auto body_of = [&](int i) { return absl::StrCat(R"({"i":)", i, R"(,"p":")", pad, R"("})"); };
  auto pk_of = [](int i) { return absl::StrCat("doc:", i); };
  std::vector<Result> results;

  // (a) plain pipelined SET.
  {
    std::vector<redisContext*> conns(a.clients);
    for (auto& c : conns) c = redisConnect("127.0.0.1", port);
    results.push_back(Measure("plain pipelined SET (direct)", a, [&](int c, int first, int n) {
      for (int i = first; i < first + n; ++i) {
        const std::string k = pk_of(i), v = body_of(i);
        redisAppendCommand(conns[c], "SET %b %b", k.data(), k.size(), v.data(), v.size());
      }
      for (int i = 0; i < n; ++i) {
        void* r = nullptr;
        redisGetReply(conns[c], &r);
        freeReplyObject(r);
      }
    }));
    for (auto& c : conns) redisFree(c);
  }
  Flush(port);

  // (b) the conditional-write script, same batching (RedisStore::ApplyMany groups a
  // batch per shard, exactly as the worker's fan-out does).
  {
    StoreOptions so;
    so.pool_size = a.clients;
    auto store = *RedisStore::Create(address, so);
    ManualClock clock;
    HybridClock hlc(SystemClock::Default(), 1);
    results.push_back(Measure("conditional-write script (direct)", a, [&](int, int first, int n) {
      std::map<uint32_t, ShardMutations> by_shard;
      for (int i = first; i < first + n; ++i) {
        const std::string pk = pk_of(i);
        const uint32_t s = ShardForKey(pk, kShards);
        auto& b = by_shard[s];
        b.shard = ShardKey{"bench", 1, s};
        b.muts.push_back(Mutation{pk, hlc.Next(), false, body_of(i), 0});
      }
      std::vector<ShardMutations> batches;
      for (auto& [s, b] : by_shard) batches.push_back(std::move(b));
      auto r = store->ApplyMany(1, batches);
      if (!r.ok()) std::fprintf(stderr, "apply: %s\n", r.status().ToString().c_str());
    }));
  }
  Flush(port);

  // (c) through the worker over gRPC.
  {
    Router router;
    v1::ClusterView v;
    v.set_epoch(1);
    auto* n = v.add_nodes();
    n->set_id("r0");
    n->set_address(address);
    n->set_store("redis");
    auto* g = v.add_generations();
    g->set_index("bench");
    g->set_generation(1);
    g->set_shards(kShards);
    g->set_rf(1);
    g->set_role(v1::GENERATION_LIVE);
    for (uint32_t s = 0; s < kShards; ++s) {
      auto* r = g->add_routes();
      r->set_shard(s);
      r->set_state(v1::SHARD_STABLE);
      for (auto* set : {r->mutable_owners(), r->mutable_write_set(), r->mutable_acking_set(),
                        r->mutable_read_set()}) {
        auto* go = set->Add();
        go->set_group("g0");
        go->add_nodes("r0");
      }
    }
    router.Apply(v);
    StoreOptions so;
    so.pool_size = a.clients;
    NodeStores stores(so);
    HybridClock hlc(SystemClock::Default(), HybridClock::RandomWriterId());
    ThreadPool pool(a.clients * 2);
    InflightTracker inflight;
    BenchLink link;
    WritePath path(&router, &stores, &hlc, SystemClock::Default(), &pool, &inflight, &link,
                   WritePathOptions{});
    DataPlaneService svc(&path, &router, &stores, &link, /*exclusions=*/nullptr, 4);
    auto server = StartGrpcServer("127.0.0.1:0", {&svc});
    if (!server.ok()) return 1;
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->port),
                                       grpc::InsecureChannelCredentials());
    auto stub = v1::DataPlane::NewStub(channel);
    struct Stream {
      grpc::ClientContext ctx;
      std::unique_ptr<grpc::ClientReaderWriter<v1::WriteBatch, v1::WriteAcks>> rw;
    };
    std::vector<std::unique_ptr<Stream>> streams;
    for (int c = 0; c < a.clients; ++c) {
      auto s = std::make_unique<Stream>();
      s->rw = stub->Write(&s->ctx);
      streams.push_back(std::move(s));
    }
    std::atomic<uint64_t> errors{0};
    results.push_back(
        Measure("through the worker (DataPlane.Write)", a, [&](int c, int first, int cnt) {
          v1::WriteBatch b;
          b.set_batch_id(static_cast<uint64_t>(first));
          for (int i = first; i < first + cnt; ++i) {
            auto* it = b.add_items();
            it->mutable_put()->set_index("bench");
            it->mutable_put()->set_pk(pk_of(i));
            it->mutable_put()->set_body(body_of(i));
          }
          streams[c]->rw->Write(b);
          v1::WriteAcks acks;
          streams[c]->rw->Read(&acks);
          for (const auto& ack : acks.acks()) errors += ack.code() != 0 ? 1 : 0;
        }));
    for (auto& s : streams) {
      s->rw->WritesDone();
      s->rw->Finish();
    }
    // (d) the same documents through the client library (client/): validation
    // before the RPC, per-key tokens, one Write stream per call.
    {
      client::ClientOptions co;
      co.workers = {absl::StrCat("127.0.0.1:", server->port)};
      co.max_batch_items = a.batch;
      auto cl = client::Client::Create(co);
      if (!cl.ok()) return 1;
      std::vector<std::unique_ptr<client::Session>> sessions;
      for (int c = 0; c < a.clients; ++c) sessions.push_back((*cl)->NewSession());
      results.push_back(
          Measure("through the client (Session::Write)", a, [&](int c, int first, int cnt) {
            std::vector<client::Mutation> ms;
            ms.reserve(cnt);
            for (int i = first; i < first + cnt; ++i) {
              ms.push_back(client::Mutation::Put("bench", pk_of(i), body_of(i)));
            }
            for (const auto& r : sessions[c]->Write(ms)) {
              errors += r.status.ok() ? 0 : 1;
            }
          }));
    }
    if (errors.load() > 0) std::fprintf(stderr, "worker errors: %lu\n", errors.load());
    server->server->Shutdown();
  }
  const long rss_kb = RssKb();
  kill(redis, SIGTERM);
  waitpid(redis, nullptr, 0);
  std::string rm = "rm -rf " + dir;
  [[maybe_unused]] int rc = std::system(rm.c_str());

  std::printf("docs=%d batch=%d clients=%d body=%dB, 1 redis-server (AOF appendfsync always)\n",
              a.docs, a.batch, a.clients, a.body);
  std::printf("%-40s %12s %10s %10s %8s\n", "path", "docs/s", "p50 ms", "p99 ms", "ratio");
  const double script = results[1].docs_per_s;
  for (const auto& r : results) {
    std::printf("%-40s %12.0f %10.2f %10.2f %8.2f\n", r.name.c_str(), r.docs_per_s, r.p50_ms,
                r.p99_ms, r.docs_per_s / script);
  }
  std::printf("peak RSS of the benchmark process (worker + client): %.1f MB\n", rss_kb / 1024.0);
  return 0;
}

}  // namespace
}  // namespace miroir

int main(int argc, char** argv) { return miroir::Main(argc, argv); }
