// TLS to etcd (docs/ha.md "TLS to etcd"): a real miroir-coordinator with
// state.etcd.tls leads and commits on a real etcd that serves TLS only and
// requires client certificates; without its certificate it exits 1 naming the
// endpoints, and a certificate without its key is a config error (exit 2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/grpc_server.h"
#include "harness/etcd_cluster.h"
#include "harness/ports.h"
#include "harness/process.h"
#include "harness/redis_node.h"
#include "harness/temp_dir.h"
#include "harness/test_pki.h"
#include "miroir/v1/coordinator.grpc.pb.h"

namespace miroir::testing {
namespace {

namespace v1 = ::miroir::v1;
using ::testing::HasSubstr;

class EtcdTlsTest : public ::testing::Test {
 protected:
  // A TLS etcd of `members` members with client-certificate auth, and the
  // coordinator's own client certificate from the same CA.
  void StartEtcd(int members) {
    auto pki = TestPki::Create(dir_.Subdir("pki"));
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = std::make_unique<TestPki>(*pki);
    auto server = pki_->Issue("etcd-server");
    auto client = pki_->Issue("etcdctl");
    auto coordinator = pki_->Issue("miroir-coordinator");
    ASSERT_TRUE(server.ok() && client.ok() && coordinator.ok());
    coordinator_cert_ = *coordinator;
    auto etcd = EtcdCluster::Start(dir_.path(), members, EtcdTls{pki_->ca(), *server, *client});
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
  }

  std::string HttpsEndpoints() const {
    std::vector<std::string> urls;
    for (const auto& ep : etcd_->endpoints()) urls.push_back("https://" + ep);
    return absl::StrJoin(urls, ", ");
  }

  // The state: section for these endpoints and `tls` (the YAML flow map).
  std::string StateYaml(const std::string& endpoints, const std::string& tls) const {
    return absl::StrCat(
        "worker_lease_ttl: 10s\nstate:\n  backend: etcd\n  etcd:\n"
        "    endpoints: [",
        endpoints,
        "]\n    prefix: /tls\n    lease_ttl: 2s\n    dial_timeout: 1s\n"
        "    request_timeout: 2s\n    tls: ",
        tls, "\n");
  }

  std::string MutualTls() const {
    return absl::StrCat("{ca: ", pki_->ca(), ", cert: ", coordinator_cert_.cert,
                        ", key: ", coordinator_cert_.key, "}");
  }

  // Runs a coordinator to its exit (a bad start).
  absl::StatusOr<RunResult> RunCoordinator(const std::string& yaml, const std::string& name) {
    WriteFile(dir_.File(name + ".yaml"), yaml);
    return RunToCompletion(MIROIR_COORDINATOR_BIN,
                           {"--listen", "127.0.0.1:0", "--data-dir", dir_.Subdir(name), "--config",
                            dir_.File(name + ".yaml")},
                           dir_.path(), absl::Seconds(30));
  }

  TempDir dir_{"etcd-tls"};
  std::unique_ptr<TestPki> pki_;
  CertFiles coordinator_cert_;
  std::unique_ptr<EtcdCluster> etcd_;
};

TEST_F(EtcdTlsTest, ACoordinatorWithItsClientCertificateLeadsAndCommits) {
  // Three members: the one TLS channel fails over between them.
  ASSERT_NO_FATAL_FAILURE(StartEtcd(3));
  WriteFile(dir_.File("coordinator.yaml"), StateYaml(HttpsEndpoints(), MutualTls()));
  ProcessOptions o;
  o.binary = MIROIR_COORDINATOR_BIN;
  const std::string port_file = dir_.File("c0.port");
  o.args = {"--listen",   "127.0.0.1:0",     "--port-file", port_file,
            "--data-dir", dir_.Subdir("c0"), "--config",    dir_.File("coordinator.yaml")};
  o.log_path = dir_.File("c0.log");
  auto coordinator = Process::Start(o);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  auto port = WaitForPortFile(port_file, absl::Seconds(20), coordinator->get());
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string address = LoopbackAddress(*port);
  auto stub = v1::Coordinator::NewStub(MakeChannel(address));
  auto status = [&](v1::GetStatusResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub->GetStatus(&ctx, v1::GetStatusRequest(), resp);
  };

  // It leads: it names itself, with a term from etcd.
  v1::GetStatusResponse before;
  bool leading = false;
  for (int i = 0; i < 200 && !leading; ++i) {
    leading = status(&before).ok() && before.leader() == address;
    if (!leading) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(leading) << before.ShortDebugString();
  EXPECT_GT(before.term(), 0);
  // Every member answers its own TLS health probe.
  ASSERT_EQ(before.etcd_size(), 3);
  for (const auto& member : before.etcd()) {
    EXPECT_TRUE(member.healthy()) << member.endpoint() << ": " << member.error();
    EXPECT_THAT(etcd_->endpoints(), ::testing::Contains(member.endpoint()));
  }

  // It commits: cluster init raises the epoch, and the model is in etcd.
  auto redis = RedisNode::Start(dir_.Subdir("r0"));
  ASSERT_TRUE(redis.ok()) << redis.status();
  WriteFile(dir_.File("fleet.yaml"),
            absl::StrCat(
                "groups:\n  - id: g0\n    nodes:\n      - {id: r0, address: ", (*redis)->address(),
                ", store: redis}\nindexes:\n  - {name: products, shards: 4, rf: 1}\n"));
  auto init = RunToCompletion(
      MIROIR_CTL_BIN,
      {"--coordinator", address, "cluster", "init", "--file", dir_.File("fleet.yaml")}, dir_.path(),
      absl::Seconds(30));
  ASSERT_TRUE(init.ok()) << init.status();
  ASSERT_EQ(init->exit_code, 0) << init->stderr_text << init->stdout_text;
  v1::GetStatusResponse after;
  ASSERT_TRUE(status(&after).ok());
  EXPECT_GT(after.epoch(), before.epoch());
  EXPECT_EQ(after.leader(), address);
  EXPECT_EQ(after.term(), before.term());
  auto keys = RunToCompletion("etcdctl",
                              {"--endpoints", "https://" + etcd_->endpoint(0), "--cacert",
                               pki_->ca(), "--cert", coordinator_cert_.cert, "--key",
                               coordinator_cert_.key, "get", "--prefix", "/tls/", "--keys-only"},
                              dir_.path(), absl::Seconds(10));
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->exit_code, 0) << keys->stderr_text;
  EXPECT_THAT(keys->stdout_text, HasSubstr("/tls/"));
}

TEST_F(EtcdTlsTest, BadStartsExitNamingTheCause) {
  ASSERT_NO_FATAL_FAILURE(StartEtcd(1));
  const std::string endpoint = etcd_->endpoint(0);
  // No client certificate: etcd refuses the handshake, which looks like no
  // answer: exit 1 after the dial timeout, naming the endpoints.
  auto no_cert = RunCoordinator(StateYaml(HttpsEndpoints(), absl::StrCat("{ca: ", pki_->ca(), "}")),
                                "no-cert");
  ASSERT_TRUE(no_cert.ok()) << no_cert.status();
  EXPECT_EQ(no_cert->exit_code, 1) << no_cert->stderr_text;
  EXPECT_THAT(no_cert->stderr_text,
              HasSubstr(absl::StrCat("no etcd answered at ", endpoint, " within 1s over TLS")));
  // Plaintext to a TLS-only etcd: the same.
  auto plain = RunCoordinator(
      absl::StrCat("worker_lease_ttl: 10s\nstate:\n  backend: etcd\n  etcd:\n    endpoints: [",
                   endpoint, "]\n    dial_timeout: 1s\n"),
      "plain");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->exit_code, 1) << plain->stderr_text;
  EXPECT_THAT(plain->stderr_text,
              HasSubstr(absl::StrCat("no etcd answered at ", endpoint, " within 1s")));
  // A server name the member's certificate does not carry: checked, refused.
  auto wrong_name = RunCoordinator(
      StateYaml(HttpsEndpoints(),
                absl::StrCat("{ca: ", pki_->ca(), ", cert: ", coordinator_cert_.cert,
                             ", key: ", coordinator_cert_.key, ", server_name: etcd.invalid}")),
      "wrong-name");
  ASSERT_TRUE(wrong_name.ok()) << wrong_name.status();
  EXPECT_EQ(wrong_name->exit_code, 1) << wrong_name->stderr_text;
  EXPECT_THAT(wrong_name->stderr_text,
              HasSubstr(absl::StrCat("no etcd answered at ", endpoint, " within 1s over TLS")));
  // A certificate without its key: a config error naming the missing key.
  auto no_key = RunCoordinator(
      StateYaml(HttpsEndpoints(),
                absl::StrCat("{ca: ", pki_->ca(), ", cert: ", coordinator_cert_.cert, "}")),
      "no-key");
  ASSERT_TRUE(no_key.ok()) << no_key.status();
  EXPECT_EQ(no_key->exit_code, 2) << no_key->stderr_text;
  EXPECT_THAT(no_key->stderr_text,
              HasSubstr("state.etcd.tls.key: required with state.etcd.tls.cert"));
  // An unreadable file: exit 2 naming the key and the file.
  auto missing = RunCoordinator(
      StateYaml(HttpsEndpoints(), absl::StrCat("{ca: ", dir_.File("nope.pem"), "}")), "missing");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(missing->exit_code, 2) << missing->stderr_text;
  EXPECT_THAT(
      missing->stderr_text,
      HasSubstr(absl::StrCat("state.etcd.tls.ca ", dir_.File("nope.pem"), ": cannot read")));
  // https:// with no state.etcd.tls: exit 2 naming both.
  auto https_plain = RunCoordinator(
      absl::StrCat("worker_lease_ttl: 10s\nstate:\n  backend: etcd\n  etcd:\n    endpoints: [",
                   HttpsEndpoints(), "]\n"),
      "https-plain");
  ASSERT_TRUE(https_plain.ok()) << https_plain.status();
  EXPECT_EQ(https_plain->exit_code, 2) << https_plain->stderr_text;
  EXPECT_THAT(https_plain->stderr_text,
              HasSubstr(absl::StrCat("state.etcd.endpoints: 'https://", endpoint,
                                     "' is https:// but state.etcd.tls")));
}

}  // namespace
}  // namespace miroir::testing
