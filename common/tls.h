// Transport security shared by every miroir server and client (DESIGN §13):
// the --tls-cert/--tls-key/--tls-ca files, the rule that a plaintext listen
// address must be loopback unless --insecure, and the gRPC credentials built
// from them. gRPC's own TLS only. Pure checks plus credential factories; any
// thread.
#ifndef MIROIR_COMMON_TLS_H_
#define MIROIR_COMMON_TLS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/yaml_config.h"

namespace miroir {

// PEM files. On a server: cert+key = serve TLS; ca = require and verify client
// certificates (mTLS). On a client: ca = verify the server (default: the system
// roots); cert+key = present a client certificate.
struct TlsFiles {
  std::string cert;
  std::string key;
  std::string ca;
  bool enabled() const { return !cert.empty() || !ca.empty(); }
};

// How often the server re-reads its certificate files (rotation without a
// restart; SIGHUP is not needed for certificates).
inline constexpr unsigned kCertificateRefreshSeconds = 5;

// Flags override the YAML per field.
void MergeTlsFiles(const TlsFiles& flags, TlsFiles* config);

// The flags that name the files, "--tls-": "--tls-cert", ...
inline constexpr char kTlsFlagPrefix[] = "--tls-";

// Every named file readable, cert and key given together. `server`: a CA alone
// (no cert) is refused. INVALID_ARGUMENT naming the setting: `name_prefix` +
// "cert" / "key" / "ca" ("--tls-cert"; a config section passes its own,
// "state.etcd.tls." for "state.etcd.tls.key").
absl::Status ValidateTlsFiles(const TlsFiles& tls, bool server,
                              const std::string& name_prefix = kTlsFlagPrefix);

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);
// The host part of HOST:PORT or [V6]:PORT.
std::string HostOf(const std::string& address);

// A plaintext server on a non-loopback address is refused unless `insecure`:
// INVALID_ARGUMENT "--listen 0.0.0.0:7400: plaintext on a non-loopback address;
// give --tls-cert/--tls-key or --insecure".
absl::Status CheckListenSecurity(const std::string& listen_flag, const std::string& listen,
                                 const TlsFiles& tls, bool insecure);

// Parses the `tls: {cert, key, ca}` mapping under `prefix` of `root`.
absl::Status ReadTlsYaml(YamlReader& r, const YAML::Node& root, TlsFiles* out);

// Server credentials: TLS with a file-watching provider when cert is set (client
// certificates required and verified when ca is set), else plaintext.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsFiles& tls);

// Channel credentials: TLS when any file is set, else plaintext. Errors as
// ValidateTlsFiles (client side), naming settings by `name_prefix`.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& tls, const std::string& name_prefix = kTlsFlagPrefix);

}  // namespace miroir

#endif  // MIROIR_COMMON_TLS_H_
