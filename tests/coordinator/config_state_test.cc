// The state.* keys: backend selection and the etcd backend's settings.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "coordinator/config.h"

namespace miroir::coordinator {
namespace {

using ::testing::HasSubstr;

TEST(CoordinatorConfigState, SqliteIsTheDefault) {
  auto c = ParseCoordinatorConfig("", "c.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state.backend, "sqlite");
  EXPECT_EQ(c->state.etcd.lease_ttl, absl::Seconds(3));
  EXPECT_EQ(c->state.etcd.prefix, "/miroir");
}

TEST(CoordinatorConfigState, ParsesTheEtcdBackend) {
  auto c = ParseCoordinatorConfig(R"(state:
  backend: etcd
  etcd:
    endpoints: [127.0.0.1:2379, 127.0.0.1:22379]
    prefix: /prod
    lease_ttl: 2s
    dial_timeout: 1s
    request_timeout: 3s
)",
                                  "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state.backend, "etcd");
  EXPECT_EQ(c->state.etcd.endpoints,
            (std::vector<std::string>{"127.0.0.1:2379", "127.0.0.1:22379"}));
  EXPECT_EQ(c->state.etcd.prefix, "/prod");
  EXPECT_EQ(c->state.etcd.lease_ttl, absl::Seconds(2));
  EXPECT_EQ(c->state.etcd.dial_timeout, absl::Seconds(1));
  EXPECT_EQ(c->state.etcd.request_timeout, absl::Seconds(3));
  EXPECT_TRUE(ValidateCoordinatorConfig(*c).ok());
}

TEST(CoordinatorConfigState, AnUnknownBackendIsRefusedNamingTheKey) {
  auto c = ParseCoordinatorConfig("state:\n  backend: zookeeper\n", "c.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("state.backend"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("zookeeper"));
}

TEST(CoordinatorConfigState, ClusterNameDefaultsAndIsValidated) {
  auto c = ParseCoordinatorConfig("", "c.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cluster_name, "miroir");
  c = ParseCoordinatorConfig("cluster_name: eu-prod_2\n", "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->cluster_name, "eu-prod_2");
  EXPECT_TRUE(ValidateCoordinatorConfig(*c).ok());
  c = ParseCoordinatorConfig("cluster_name: \"EU prod\"\n", "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  absl::Status st = ValidateCoordinatorConfig(*c);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("cluster_name"));
}

TEST(CoordinatorConfigState, BadEtcdValuesAreRefusedNamingTheKey) {
  auto unknown = ParseCoordinatorConfig("state:\n  etcd:\n    endpoint: x\n", "c.yaml");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("endpoint"));

  CoordinatorConfig c;
  c.state.backend = "etcd";
  auto none = ValidateCoordinatorConfig(c);
  EXPECT_EQ(none.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(none.message()), HasSubstr("state.etcd.endpoints"));

  c.state.etcd.endpoints = {"127.0.0.1"};
  EXPECT_THAT(std::string(ValidateCoordinatorConfig(c).message()),
              HasSubstr("state.etcd.endpoints"));
  c.state.etcd.endpoints = {"127.0.0.1:2379"};
  EXPECT_TRUE(ValidateCoordinatorConfig(c).ok());

  c.state.etcd.prefix = "miroir/";
  EXPECT_THAT(std::string(ValidateCoordinatorConfig(c).message()), HasSubstr("state.etcd.prefix"));
  c.state.etcd.prefix = "/miroir";

  c.state.etcd.lease_ttl = absl::Milliseconds(1500);
  EXPECT_THAT(std::string(ValidateCoordinatorConfig(c).message()),
              HasSubstr("state.etcd.lease_ttl"));
  c.state.etcd.lease_ttl = absl::Seconds(3);

  c.state.etcd.request_timeout = absl::ZeroDuration();
  EXPECT_THAT(std::string(ValidateCoordinatorConfig(c).message()),
              HasSubstr("state.etcd.request_timeout"));
}

// DESIGN §9a: 2 x lease_ttl + one heartbeat (worker_lease_ttl / 3) must be
// below worker_lease_ttl, or a failover outlasts the workers' leases.
TEST(CoordinatorConfigState, AFailoverLongerThanTheWorkerLeaseIsRefused) {
  CoordinatorConfig c;
  c.state.backend = "etcd";
  c.state.etcd.endpoints = {"127.0.0.1:2379"};
  c.worker_lease_ttl = absl::Seconds(10);
  c.state.etcd.lease_ttl = absl::Seconds(3);  // 6 + 3.33 < 10
  EXPECT_TRUE(ValidateCoordinatorConfig(c).ok());
  c.state.etcd.lease_ttl = absl::Seconds(4);  // 8 + 3.33 >= 10
  auto st = ValidateCoordinatorConfig(c);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("state.etcd.lease_ttl"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("worker_lease_ttl"));
}

// A file that passes the PEM check (ValidateTlsFiles reads it, gRPC does not).
std::string PemFile(const std::string& name) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
  return path;
}

TEST(CoordinatorConfigState, ParsesTlsToEtcdAndStripsTheScheme) {
  const std::string ca = PemFile("etcd-ca.pem");
  const std::string cert = PemFile("etcd-client.pem");
  const std::string key = PemFile("etcd-client.key");
  auto c = ParseCoordinatorConfig(absl::StrCat(R"(state:
  backend: etcd
  etcd:
    endpoints: [https://127.0.0.1:2379, 127.0.0.1:22379]
    tls: {ca: )",
                                               ca, ", cert: ", cert, ", key: ", key, "}\n"),
                                  "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state.etcd.tls.ca, ca);
  EXPECT_EQ(c->state.etcd.tls.cert, cert);
  EXPECT_EQ(c->state.etcd.tls.key, key);
  EXPECT_TRUE(c->state.etcd.tls_server_name.empty());
  EXPECT_TRUE(ValidateCoordinatorConfig(*c).ok()) << ValidateCoordinatorConfig(*c);
  EXPECT_EQ(EtcdAddresses(c->state.etcd),
            (std::vector<std::string>{"127.0.0.1:2379", "127.0.0.1:22379"}));
  // The CA alone: TLS with the server verified, no client certificate.
  c->state.etcd.tls.cert.clear();
  c->state.etcd.tls.key.clear();
  EXPECT_TRUE(ValidateCoordinatorConfig(*c).ok());

  auto unknown =
      ParseCoordinatorConfig("state:\n  etcd:\n    tls: {ca: a, certfile: b}\n", "c.yaml");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("certfile"));
}

TEST(CoordinatorConfigState, BadTlsToEtcdIsRefusedNamingTheKeyOrFile) {
  CoordinatorConfig c;
  c.state.backend = "etcd";
  c.state.etcd.endpoints = {"https://127.0.0.1:2379"};
  // https:// without TLS files.
  absl::Status st = ValidateCoordinatorConfig(c);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("state.etcd.tls"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("https://127.0.0.1:2379"));

  c.state.etcd.tls.ca = PemFile("etcd-ca.pem");
  c.state.etcd.tls.cert = PemFile("etcd-client.pem");
  EXPECT_EQ(ValidateCoordinatorConfig(c).message(),
            "state.etcd.tls.key: required with state.etcd.tls.cert");
  c.state.etcd.tls.cert.clear();
  c.state.etcd.tls.key = PemFile("etcd-client.key");
  EXPECT_EQ(ValidateCoordinatorConfig(c).message(),
            "state.etcd.tls.cert: required with state.etcd.tls.key");
  c.state.etcd.tls.cert = "/nonexistent/etcd-client.pem";
  EXPECT_EQ(ValidateCoordinatorConfig(c).message(),
            "state.etcd.tls.cert /nonexistent/etcd-client.pem: cannot read");
  c.state.etcd.tls.cert = PemFile("etcd-client.pem");
  EXPECT_TRUE(ValidateCoordinatorConfig(c).ok());

  // Another scheme, and http:// with TLS on.
  c.state.etcd.endpoints = {"unix://127.0.0.1:2379"};
  EXPECT_THAT(std::string(ValidateCoordinatorConfig(c).message()),
              HasSubstr("state.etcd.endpoints: 'unix://127.0.0.1:2379'"));
  c.state.etcd.endpoints = {"http://127.0.0.1:2379"};
  EXPECT_THAT(std::string(ValidateCoordinatorConfig(c).message()), HasSubstr("http://"));

  // Members on several hosts share one TLS channel: one name for it.
  c.state.etcd.endpoints = {"https://10.0.0.1:2379", "https://10.0.0.2:2379"};
  EXPECT_THAT(std::string(ValidateCoordinatorConfig(c).message()),
              HasSubstr("state.etcd.tls.server_name"));
  c.state.etcd.tls_server_name = "etcd.internal";
  EXPECT_TRUE(ValidateCoordinatorConfig(c).ok());

  // A server name with no TLS.
  c.state.etcd.tls = {};
  c.state.etcd.endpoints = {"127.0.0.1:2379"};
  EXPECT_THAT(std::string(ValidateCoordinatorConfig(c).message()),
              HasSubstr("state.etcd.tls.server_name"));
}

}  // namespace
}  // namespace miroir::coordinator
