#include "common/auth_processor.h"

#include "common/grpc_server.h"
#include "spdlog/spdlog.h"

namespace miroir {
namespace {

constexpr char kPrincipalProperty[] = "miroir_principal";

}  // namespace

absl::StatusOr<std::shared_ptr<AuthProcessor>> AuthProcessor::Load(const std::string& tokens_file) {
  auto table = LoadAuthTable(tokens_file);
  if (!table.ok()) return table.status();
  return std::shared_ptr<AuthProcessor>(new AuthProcessor(tokens_file, std::move(*table)));
}

absl::Status AuthProcessor::Reload() {
  auto table = LoadAuthTable(path_);
  if (!table.ok()) return table.status();
  absl::MutexLock l(&mu_);
  table_ = std::move(*table);
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
  absl::StatusOr<Principal> who;
  {
    absl::MutexLock l(&mu_);
    who = Authorize(table_, method, creds);
  }
  if (!who.ok()) {
    spdlog::warn("refused {}: {}", method, std::string(who.status().message()));
    return ToGrpc(who.status());
  }
  // The token is consumed: handlers never see it.
  if (creds.authorization.has_value()) consumed->insert({"authorization", *creds.authorization});
  if (!who->name.empty()) context->AddProperty(kPrincipalProperty, who->name);
  // Audit trail of accepted mutations in the log (who, what; the log line has the time).
  if (who->role == Role::kAdmin && RequiredRole(method).value_or(Role::kOpen) == Role::kAdmin) {
    spdlog::info("audit: {} called {}", who->name, method.substr(1));
  }
  return grpc::Status::OK;
}

std::string PrincipalOf(const grpc::ServerContext* ctx) {
  auto auth = ctx->auth_context();
  if (auth) {
    auto values = auth->FindPropertyValues(kPrincipalProperty);
    if (!values.empty()) return std::string(values.front().data(), values.front().size());
  }
  return "anonymous";
}

}  // namespace miroir
