// TestPki: a throw-away certificate authority and certificates for TLS tests,
// made with the `openssl` command in a test's temp dir. Every certificate is
// valid for 127.0.0.1 and localhost, for both server and client use, and its
// subject is "CN=<name>".
#ifndef MIROIR_TESTS_HARNESS_TEST_PKI_H_
#define MIROIR_TESTS_HARNESS_TEST_PKI_H_

#include <string>

#include "absl/status/statusor.h"

namespace miroir::testing {

struct CertFiles {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key
};

class TestPki {
 public:
  // Creates DIR/<ca_name>.pem and its key.
  static absl::StatusOr<TestPki> Create(const std::string& dir, const std::string& ca_name = "ca");
  // Issues DIR/<name>.pem, DIR/<name>.key signed by this CA.
  absl::StatusOr<CertFiles> Issue(const std::string& name) const;
  const std::string& ca() const { return ca_.cert; }

 private:
  std::string dir_;
  CertFiles ca_;
};

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_TEST_PKI_H_
