#include "common/tls.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

TEST(Tls, LoopbackHosts) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.3.2.1"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("::"));
  EXPECT_FALSE(IsLoopbackHost("db.example"));
  EXPECT_EQ(HostOf("[::1]:7400"), "::1");
  EXPECT_EQ(HostOf("10.1.2.3:7400"), "10.1.2.3");
}

TEST(Tls, PlaintextOnANonLoopbackAddressNeedsInsecure) {
  auto s = CheckListenSecurity("--listen", "0.0.0.0:7400", {}, false);
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--insecure"), absl::string_view::npos) << s;
  EXPECT_TRUE(CheckListenSecurity("--listen", "0.0.0.0:7400", {}, true).ok());
  EXPECT_TRUE(CheckListenSecurity("--listen", "127.0.0.1:0", {}, false).ok());
  EXPECT_TRUE(CheckListenSecurity("--listen", "0.0.0.0:7400", {"c.pem", "k.pem", ""}, false).ok());
}

TEST(Tls, CertAndKeyGoTogetherAndFilesMustBeReadable) {
  EXPECT_EQ(ValidateTlsFiles({"c.pem", "", ""}, true).message(),
            "--tls-key: required with --tls-cert");
  EXPECT_EQ(ValidateTlsFiles({"", "", "ca.pem"}, true).message(),
            "--tls-ca: a server needs --tls-cert and --tls-key too");
  EXPECT_EQ(ValidateTlsFiles({"/nonexistent/c.pem", "/nonexistent/k.pem", ""}, true).message(),
            "--tls-cert /nonexistent/c.pem: cannot read");
  EXPECT_TRUE(ValidateTlsFiles({}, true).ok());
}

TEST(Tls, AConfigSectionNamesItsOwnKeys) {
  EXPECT_EQ(ValidateTlsFiles({"c.pem", "", ""}, false, "state.etcd.tls.").message(),
            "state.etcd.tls.key: required with state.etcd.tls.cert");
  EXPECT_EQ(
      MakeChannelCredentials({"", "", "/nonexistent/ca.pem"}, "state.etcd.tls.").status().message(),
      "state.etcd.tls.ca /nonexistent/ca.pem: cannot read");
}

}  // namespace
}  // namespace miroir
