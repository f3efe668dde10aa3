// miroir-demo-writer: the demo's client. Loads documents through the public
// DataPlane.Write API, keeps putting and deleting (the shared TestWriter: unique
// bodies, after_version tokens, per-key sequential operations) until SIGTERM /
// SIGINT or --duration, then waits for the cluster to settle and checks the
// promise of DESIGN §4 against the store nodes themselves. Prints a short
// report (and writes it as JSON with --report-json). Exit 0 when nothing was
// lost or resurrected, 1 otherwise, 2 on usage errors.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "absl/strings/str_split.h"
#include "common/grpc_server.h"
#include "harness/redis_node.h"
#include "harness/test_writer.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

int64_t Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"miroir demo writer: load, keep writing, check the promise on the nodes"};
  std::string coordinator = "127.0.0.1:7400";
  std::string workers;
  std::string index = "products";
  int keys = 2000;
  double rate = 500;
  double duration_s = 600;
  double delete_fraction = 0.1;
  std::string report_json;
  miroir::TlsFiles tls;
  std::string token_file, coordinator_token_file;
  std::string store_username, store_password_file;
  app.add_option("--coordinator", coordinator, "coordinator HOST:PORT");
  app.add_option("--workers", workers, "worker HOST:PORT list, comma-separated")->required();
  app.add_option("--index", index, "index name");
  app.add_option("--keys", keys, "documents loaded first, then rewritten");
  app.add_option("--rate", rate, "writes per second after the load (0: unthrottled)");
  app.add_option("--duration", duration_s, "seconds to write at most");
  app.add_option("--delete-fraction", delete_fraction, "share of deletes after the load");
  app.add_option("--report-json", report_json, "write the report here as JSON");
  app.add_option("--tls-ca", tls.ca, "PEM CA verifying the servers (TLS)");
  app.add_option("--tls-cert", tls.cert, "PEM client certificate (mTLS)");
  app.add_option("--tls-key", tls.key, "PEM key of --tls-cert");
  app.add_option("--token-file", token_file, "bearer token for the workers (role client)");
  app.add_option("--coordinator-token-file", coordinator_token_file,
                 "bearer token for the coordinator (role admin: the check runs anti-entropy)");
  app.add_option("--store-username", store_username,
                 "ACL user the check logs in as on every store node (store.username)");
  app.add_option("--store-password-file", store_password_file,
                 "file holding that user's password (store.password_file)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  miroir::ClientSecurity security{tls, "", {}};
  for (auto [flag, path, out] : {std::tuple<const char*, const std::string*, std::string*>{
                                     "--token-file", &token_file, &security.token},
                                 {"--coordinator-token-file", &coordinator_token_file,
                                  &security.target_tokens[coordinator]}}) {
    if (path->empty()) continue;
    auto token = miroir::ReadTokenFile(flag, *path);
    if (!token.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(token.status().message()).c_str());
      return 2;
    }
    *out = *token;
  }
  if (security.target_tokens[coordinator].empty()) security.target_tokens.erase(coordinator);
  if (!store_password_file.empty()) {
    // The check reads every node itself: it logs in as the workers do.
    auto password = miroir::ReadTokenFile("--store-password-file", store_password_file);
    if (!password.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(password.status().message()).c_str());
      return 2;
    }
    miroir::testing::RegisterRedisAcl("*", {store_username, *password});
  }
  if (auto s = miroir::SetClientSecurity(security); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);

  miroir::testing::WriterOptions wo;
  wo.worker_addresses = absl::StrSplit(workers, ',', absl::SkipEmpty());
  wo.index = index;
  wo.keys = keys;
  wo.load_first = true;
  wo.delete_fraction = delete_fraction;
  wo.ops_per_second = rate;
  wo.max_duration = absl::Seconds(duration_s);
  wo.streams = 4;
  wo.batch_size = 8;
  miroir::testing::TestWriter writer(wo);
  if (absl::Status s = writer.Start(); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  absl::Time start = absl::Now();
  uint64_t last_print = 0;
  while (!g_stop.load() && absl::Now() - start < absl::Seconds(duration_s)) {
    absl::SleepFor(absl::Milliseconds(200));
    miroir::testing::WriterStats st = writer.stats();
    if (st.acked() / 5000 != last_print / 5000) {
      std::fprintf(stderr, "writer: %llu acknowledged, %llu unknown\n",
                   static_cast<unsigned long long>(st.acked()),
                   static_cast<unsigned long long>(st.unknown));
      last_print = st.acked();
    }
    if (st.issued > 0 && st.acked() == 0 && st.stream_failures > 20) break;  // nothing works
  }
  writer.Stop();
  writer.Wait();
  absl::Duration wrote_for = absl::Now() - start;
  miroir::testing::WriterStats st = writer.stats();
  auto records = writer.records();
  uint64_t documents = 0;
  for (const auto& [k, r] : records) documents += r.acked && !r.deleted && !r.unknown;

  nlohmann::json report;
  report["acknowledged_writes"] = st.acked();
  report["acknowledged_puts"] = st.acked_puts;
  report["acknowledged_deletes"] = st.acked_deletes;
  report["unknown_outcome"] = st.unknown;
  report["degraded_acks"] = st.degraded;
  report["documents"] = documents;
  report["writes_per_s"] = st.acked() / std::max(1e-3, absl::ToDoubleSeconds(wrote_for));
  report["longest_write_stall_ms"] = absl::ToDoubleMilliseconds(st.max_batch_latency);
  report["batch_latency_p50_ms"] = Percentile(st.batch_latencies_us, 0.5) / 1000.0;
  report["batch_latency_p99_ms"] = Percentile(st.batch_latencies_us, 0.99) / 1000.0;

  auto stub = miroir::v1::Coordinator::NewStub(miroir::MakeChannel(coordinator));
  miroir::testing::CheckOptions co;
  co.coordinator = stub.get();
  co.index = index;
  co.quiesce_timeout = absl::Seconds(120);
  auto check = miroir::testing::CheckPromise(records, co);
  int rc = 0;
  if (check.ok()) {
    report["checked"] = true;
    report["lost"] = check->lost;
    report["resurrected"] = check->resurrected;
    report["mismatched"] = check->mismatched;
    report["wrong_owner"] = check->wrong_owner;
    report["unreachable_nodes"] = check->unreachable;
    report["keys_checked"] = check->keys_checked;
    report["failures"] = check->failures;
    rc = check->ok() ? 0 : 1;
  } else {
    report["checked"] = false;
    report["check_error"] = check.status().ToString();
    rc = 1;
  }
  if (!report_json.empty()) std::ofstream(report_json) << report.dump(2) << "\n";
  std::printf("%s\n", report.dump(2).c_str());
  return rc;
}
