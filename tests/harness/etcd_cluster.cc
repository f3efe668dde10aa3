#include "harness/etcd_cluster.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "harness/ports.h"

namespace miroir::testing {
namespace {

constexpr char kEtcdBinary[] = "etcd";
constexpr char kEtcdctlBinary[] = "etcdctl";

std::string PeerUrl(int port) { return absl::StrCat("http://127.0.0.1:", port); }

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(const std::string& dir, int members,
                                                                std::optional<EtcdTls> tls) {
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::unique_ptr<EtcdCluster> c(new EtcdCluster());
    c->dir_ = absl::StrCat(dir, "/etcd-", attempt);
    c->tls_ = tls;
    std::vector<std::string> peers;
    for (int i = 0; i < members; ++i) {
      Member m;
      m.name = absl::StrCat("m", i);
      m.data_dir = absl::StrCat(c->dir_, "/", m.name);
      auto cp = PickFreePort();
      auto pp = PickFreePort();
      if (!cp.ok()) return cp.status();
      if (!pp.ok()) return pp.status();
      m.client_port = *cp;
      m.peer_port = *pp;
      peers.push_back(absl::StrCat(m.name, "=", PeerUrl(m.peer_port)));
      c->members_.push_back(std::move(m));
    }
    c->initial_cluster_ = absl::StrJoin(peers, ",");
    std::filesystem::create_directories(c->dir_);
    bool launched = true;
    for (int i = 0; i < members && launched; ++i) {
      last = c->Launch(i, true);
      launched = last.ok();
    }
    if (launched) {
      last = c->WaitHealthy(absl::Seconds(30));
      if (last.ok()) return c;
    }
  }
  return last;
}

absl::Status EtcdCluster::Launch(int i, bool initial) {
  Member& m = members_[i];
  ProcessOptions o;
  o.binary = kEtcdBinary;
  o.log_path = absl::StrCat(dir_, "/", m.name, ".log");
  const std::string client = ClientUrl(i);
  o.args = {"--name", m.name, "--data-dir", m.data_dir, "--listen-client-urls", client,
            "--advertise-client-urls", client, "--listen-peer-urls", PeerUrl(m.peer_port),
            "--initial-advertise-peer-urls", PeerUrl(m.peer_port), "--initial-cluster",
            initial_cluster_, "--initial-cluster-state", initial ? "new" : "existing",
            "--initial-cluster-token", "miroir-test",
            // Quick elections on loopback keep the failover tests short.
            "--heartbeat-interval", "50", "--election-timeout", "500"};
  if (tls_) {
    o.args.insert(o.args.end(), {"--cert-file", tls_->server.cert, "--key-file", tls_->server.key,
                                 "--trusted-ca-file", tls_->ca, "--client-cert-auth"});
  }
  auto p = Process::Start(o);
  if (!p.ok()) return p.status();
  m.process = std::move(*p);
  return WaitForTcp(m.client_port, absl::Seconds(20), m.process.get());
}

std::string EtcdCluster::ClientUrl(int i) const {
  return absl::StrCat(tls_ ? "https" : "http", "://127.0.0.1:", members_[i].client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back(LoopbackAddress(m.client_port));
  return out;
}

std::string EtcdCluster::endpoint(int i) const { return LoopbackAddress(members_[i].client_port); }

std::string EtcdCluster::endpoints_text() const { return absl::StrJoin(endpoints(), ","); }

absl::Status EtcdCluster::Kill(int i) { return members_[i].process->Kill(); }

absl::Status EtcdCluster::Restart(int i) {
  if (members_[i].process) members_[i].process->Kill().IgnoreError();
  // A member that was part of the cluster rejoins with its data dir.
  return Launch(i, true);
}

absl::Status EtcdCluster::WaitHealthy(absl::Duration timeout) {
  std::vector<std::string> running;
  for (int i = 0; i < size(); ++i) {
    const Member& m = members_[i];
    if (m.process && m.process->Running()) running.push_back(ClientUrl(i));
  }
  std::vector<std::string> args = {"--endpoints", absl::StrJoin(running, ","), "--dial-timeout",
                                   "1s",          "--command-timeout",         "2s"};
  if (tls_) {
    args.insert(args.end(),
                {"--cacert", tls_->ca, "--cert", tls_->client.cert, "--key", tls_->client.key});
  }
  args.insert(args.end(), {"endpoint", "health"});
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    auto r = RunToCompletion(kEtcdctlBinary, args, dir_, absl::Seconds(10));
    if (r.ok() && r->exit_code == 0) return absl::OkStatus();
    if (r.ok()) last = r->stderr_text + r->stdout_text;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("etcd not healthy: ", last));
}

}  // namespace miroir::testing
