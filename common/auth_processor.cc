#include "common/auth_processor.h"

#include "common/grpc_server.h"
#include "spdlog/spdlog.h"

namespace miroir {

absl::StatusOr<std::shared_ptr<AuthProcessor>> AuthProcessor::Load(const std::string& tokens_file) {
  auto table = LoadAuthTable(tokens_file);
  if (!table.ok()) return table.status();
  return std::shared_ptr<AuthProcessor>(new AuthProcessor(tokens_file, std::move(*table)));
}

absl::Status AuthProcessor::Reload() {
  auto table = LoadAuthTable(path_);
  if (!table.ok()) return table.status();
  auto next = std::make_shared<const AuthTable>(std::move(*table));
  absl::MutexLock l(&mu_);
  table_ = std::move(next);
  return absl::OkStatus();
}

grpc::Status AuthProcessor::Process(const InputMetadata& md, grpc::AuthContext* context,
                                    OutputMetadata* consumed, OutputMetadata*) {
  std::string method;
  CallCredentials creds;
  for (const auto& [k, v] : md) {
    if (k == ":path") method.assign(v.data(), v.size());
    if (k == "authorization") creds.authorization.emplace(v.data(), v.size());
  }
  for (const grpc::string_ref& s : context->FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME)) {
    creds.cert_subjects.emplace_back(s.data(), s.size());
  }
  // The token is hashed outside the lock: only the table's pointer is taken under it.
  const absl::StatusOr<Principal> who = Authorize(*table(), method, creds);
  if (!who.ok()) {
    spdlog::warn("refused {}: {}", method, std::string(who.status().message()));
    return ToGrpc(who.status());
  }
  // The token is consumed: handlers never see it.
  if (creds.authorization.has_value()) consumed->insert({"authorization", *creds.authorization});
  // The handlers' audit trail names the caller by this (coordinator/audit.h).
  if (!who->name.empty()) context->AddProperty(kPrincipalProperty, who->name);
  // Audit trail of accepted mutations in the log (who, what; the log line has the time).
  if (who->role == Role::kAdmin && RequiredRole(method).value_or(Role::kOpen) == Role::kAdmin) {
    spdlog::info("audit: {} called {}", who->name, method.substr(1));
  }
  return grpc::Status::OK;
}

}  // namespace miroir
