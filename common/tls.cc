#include "common/tls.h"

#include <arpa/inet.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace miroir {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read"));
  std::stringstream buf;
  buf << f.rdbuf();
  return buf.str();
}

}  // namespace

void MergeTlsFiles(const TlsFiles& flags, TlsFiles* config) {
  if (!flags.cert.empty()) config->cert = flags.cert;
  if (!flags.key.empty()) config->key = flags.key;
  if (!flags.ca.empty()) config->ca = flags.ca;
}

absl::Status ValidateTlsFiles(const TlsFiles& tls, bool server, const std::string& name_prefix) {
  const std::string cert_name = name_prefix + "cert";
  const std::string key_name = name_prefix + "key";
  const std::string ca_name = name_prefix + "ca";
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError(tls.cert.empty()
                                          ? absl::StrCat(cert_name, ": required with ", key_name)
                                          : absl::StrCat(key_name, ": required with ", cert_name));
  }
  if (server && !tls.ca.empty() && tls.cert.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ca_name, ": a server needs ", cert_name, " and ", key_name, " too"));
  }
  for (const auto& [name, path] :
       {std::pair<const std::string*, const std::string*>{&cert_name, &tls.cert},
        {&key_name, &tls.key},
        {&ca_name, &tls.ca}}) {
    if (path->empty()) continue;
    auto text = ReadFile(*name, *path);
    if (!text.ok()) return text.status();
    if (text->find("-----BEGIN") == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(*name, " ", *path, ": not a PEM file"));
    }
  }
  return absl::OkStatus();
}

std::string HostOf(const std::string& address) {
  if (!address.empty() && address[0] == '[') {
    const size_t end = address.find(']');
    return end == std::string::npos ? address : address.substr(1, end - 1);
  }
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

absl::Status CheckListenSecurity(const std::string& listen_flag, const std::string& listen,
                                 const TlsFiles& tls, bool insecure) {
  if (!tls.cert.empty() || insecure || IsLoopbackHost(HostOf(listen))) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(listen_flag, " ", listen,
                   ": plaintext on a non-loopback address is refused; give --tls-cert and "
                   "--tls-key, or --insecure"));
}

absl::Status ReadTlsYaml(YamlReader& r, const YAML::Node& root, TlsFiles* out) {
  if (!root.IsMap() || !root["tls"]) return absl::OkStatus();
  const YAML::Node t = root["tls"];
  if (!t.IsMap()) return YamlError(r.source(), t, "tls", "must be a map {cert, key, ca}");
  if (auto s = r.OnlyKeys(t, "tls", {"cert", "key", "ca"}); !s.ok()) return s;
  if (auto s = r.String(t, "tls", "cert", &out->cert); !s.ok()) return s;
  if (auto s = r.String(t, "tls", "key", &out->key); !s.ok()) return s;
  return r.String(t, "tls", "ca", &out->ca);
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsFiles& tls) {
  if (tls.cert.empty()) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key, tls.cert, tls.ca, kCertificateRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.ca.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& tls, const std::string& name_prefix) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  if (auto s = ValidateTlsFiles(tls, /*server=*/false, name_prefix); !s.ok()) return s;
  grpc::SslCredentialsOptions ssl;
  if (!tls.ca.empty()) {
    auto ca = ReadFile(name_prefix + "ca", tls.ca);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  if (!tls.cert.empty()) {
    auto cert = ReadFile(name_prefix + "cert", tls.cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(name_prefix + "key", tls.key);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace miroir
