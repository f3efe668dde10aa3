#include "harness/test_pki.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "harness/process.h"

namespace miroir::testing {
namespace {

absl::Status Openssl(const std::string& dir, const std::vector<std::string>& args) {
  auto r = RunToCompletion("/usr/bin/openssl", args, dir, absl::Seconds(30));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("openssl ", args.front(), ": ", r->stderr_text));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestPki> TestPki::Create(const std::string& dir, const std::string& ca_name) {
  TestPki pki;
  pki.dir_ = dir;
  pki.ca_ = {absl::StrCat(dir, "/", ca_name, ".pem"), absl::StrCat(dir, "/", ca_name, ".key")};
  if (auto s =
          Openssl(dir, {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", pki.ca_.key, "-out", pki.ca_.cert, "-days", "2",
                        "-subj", absl::StrCat("/CN=", ca_name)});
      !s.ok()) {
    return s;
  }
  return pki;
}

absl::StatusOr<CertFiles> TestPki::Issue(const std::string& name) const {
  CertFiles out{absl::StrCat(dir_, "/", name, ".pem"), absl::StrCat(dir_, "/", name, ".key")};
  const std::string csr = absl::StrCat(dir_, "/", name, ".csr");
  const std::string ext = absl::StrCat(dir_, "/", name, ".ext");
  {
    std::ofstream f(ext);
    f << "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
         "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n";
  }
  if (auto s = Openssl(
          dir_, {"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", out.key, "-out", csr, "-subj", absl::StrCat("/CN=", name)});
      !s.ok()) {
    return s;
  }
  if (auto s = Openssl(dir_, {"x509", "-req", "-in", csr, "-CA", ca_.cert, "-CAkey", ca_.key,
                              "-CAcreateserial", "-out", out.cert, "-days", "2", "-extfile", ext});
      !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace miroir::testing
