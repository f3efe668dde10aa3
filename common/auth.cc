#include "common/auth.h"

#include <openssl/sha.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/yaml_config.h"

namespace miroir {
namespace {

constexpr absl::string_view kPackage = "/miroir.v1.";

// Methods of the admin services that only read or watch; every other method of
// those services is a mutation and needs admin.
const std::set<absl::string_view>& ViewerMethods() {
  static const auto* m =
      new std::set<absl::string_view>{"Coordinator/GetStatus",    "Coordinator/ListNodes",
                                      "Coordinator/ListIndexes",  "Coordinator/GetIndex",
                                      "Coordinator/GetPlan",      "Coordinator/ListPlans",
                                      "Coordinator/WatchPlan",    "Coordinator/CheckWindow",
                                      "Coordinator/Verify",       "Coordinator/GetVerify",
                                      "Coordinator/CheckCluster", "Coordinator/GetConfig",
                                      "Reshard/Status",           "Reshard/Watch",
                                      "AntiEntropy/Status"};
  return *m;
}

const std::set<absl::string_view>& AdminMethods() {
  static const auto* m = new std::set<absl::string_view>{
      "Coordinator/InitCluster", "Coordinator/MarkNodeFailed", "Coordinator/ForgetNode",
      "Coordinator/CreateIndex", "Coordinator/SetAlias", "Coordinator/CreatePlan",
      "Coordinator/PausePlan", "Coordinator/ResumePlan", "Coordinator/AbortPlan", "Reshard/Start",
      "Reshard/Abort", "Reshard/Rollback", "Reshard/Complete", "Reshard/Cutover", "AntiEntropy/Run",
      // Live controls and the state backup (a copy of
      // the whole model: admin, like every mutation).
      "Coordinator/UpdatePlan", "Coordinator/PauseAllPlans", "Coordinator/ResumeAllPlans",
      "Coordinator/CutoverPlan", "Coordinator/ReloadConfig", "Coordinator/Backup",
      // Starts work on the workers (admin); GetVerify
      // and the one-call Verify only read (viewer).
      "Coordinator/StartVerify", "Coordinator/RemoveAlias"};
  return *m;
}

}  // namespace

absl::string_view RoleName(Role r) {
  switch (r) {
    case Role::kOpen:
      return "open";
    case Role::kAdmin:
      return "admin";
    case Role::kViewer:
      return "viewer";
    case Role::kClient:
      return "client";
    case Role::kWorker:
      return "worker";
  }
  return "?";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  for (Role r : {Role::kAdmin, Role::kViewer, Role::kClient, Role::kWorker}) {
    if (name == RoleName(r)) return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", name, "' (admin, viewer, client or worker)"));
}

absl::StatusOr<Role> RequiredRole(absl::string_view m) {
  if (absl::StartsWith(m, "/grpc.health.v1.Health/") ||
      absl::StartsWith(m, "/grpc.reflection.v1alpha.ServerReflection/") ||
      absl::StartsWith(m, "/grpc.reflection.v1.ServerReflection/")) {
    return Role::kOpen;
  }
  if (absl::StartsWith(m, kPackage)) {
    const absl::string_view rest = m.substr(kPackage.size());
    if (absl::StartsWith(rest, "DataPlane/")) return Role::kClient;
    if (absl::StartsWith(rest, "WorkerControl/")) return Role::kWorker;
    if (ViewerMethods().count(rest)) return Role::kViewer;
    if (AdminMethods().count(rest)) return Role::kAdmin;
  }
  return absl::NotFoundError(absl::StrCat("no role is allowed to call ", m));
}

bool RoleGrants(Role held, Role required) {
  if (required == Role::kOpen || held == required) return true;
  return held == Role::kAdmin && required == Role::kViewer;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

namespace {

absl::Status ReadEntries(YamlReader& r, const YAML::Node& root, const char* list,
                         const char* key_field, bool is_token, AuthTable* out) {
  const YAML::Node seq = root[list];
  if (!seq) return absl::OkStatus();
  if (!seq.IsSequence()) return YamlError(r.source(), seq, list, "must be a list");
  std::set<std::string> names;
  for (size_t i = 0; i < seq.size(); ++i) {
    const YAML::Node e = seq[i];
    const std::string at = absl::StrCat(list, "[", i, "]");
    if (!e.IsMap()) return YamlError(r.source(), e, at, "must be a map");
    if (auto s = r.OnlyKeys(e, at,
                            is_token ? std::set<std::string>{"name", "sha256", "role"}
                                     : std::set<std::string>{"subject", "role"});
        !s.ok()) {
      return s;
    }
    std::string key, role_name, name;
    if (auto s = r.String(e, at, key_field, &key); !s.ok()) return s;
    if (auto s = r.String(e, at, "role", &role_name); !s.ok()) return s;
    if (key.empty()) {
      return YamlError(r.source(), e, absl::StrCat(at, ".", key_field), "required");
    }
    auto role = ParseRole(role_name);
    if (!role.ok()) {
      return YamlError(r.source(), e["role"].IsDefined() ? e["role"] : e, at + ".role",
                       std::string(role.status().message()));
    }
    if (is_token) {
      if (auto s = r.String(e, at, "name", &name); !s.ok()) return s;
      if (name.empty()) return YamlError(r.source(), e, at + ".name", "required");
      key = absl::AsciiStrToLower(key);
      if (key.size() != 64 || key.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return YamlError(r.source(), e["sha256"], at + ".sha256",
                         "must be 64 hex digits (sha256sum of the token)");
      }
      if (!names.insert(name).second) {
        return YamlError(r.source(), e["name"], at + ".name", "duplicate name '" + name + "'");
      }
      if (!out->tokens.emplace(key, Principal{name, *role}).second) {
        return YamlError(r.source(), e["sha256"], at + ".sha256", "duplicate token");
      }
    } else if (!out->subjects.emplace(key, Principal{key, *role}).second) {
      return YamlError(r.source(), e["subject"], at + ".subject", "duplicate subject");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AuthTable> Fill(const YAML::Node& root, const std::string& source) {
  YamlReader r(source);
  AuthTable table;
  if (!root || root.IsNull()) return table;
  if (!root.IsMap()) return YamlError(source, root, "(root)", "must be a map {tokens, subjects}");
  if (auto s = r.OnlyKeys(root, "", {"tokens", "subjects"}); !s.ok()) return s;
  if (auto s = ReadEntries(r, root, "tokens", "sha256", true, &table); !s.ok()) return s;
  if (auto s = ReadEntries(r, root, "subjects", "subject", false, &table); !s.ok()) return s;
  return table;
}

}  // namespace

absl::StatusOr<AuthTable> ParseAuthTable(const std::string& text, const std::string& source) {
  auto root = ParseYaml(text, source);
  if (!root.ok()) return root.status();
  return Fill(*root, source);
}

absl::StatusOr<AuthTable> LoadAuthTable(const std::string& path) {
  auto root = LoadYamlFile(path);
  if (!root.ok()) return root.status();
  return Fill(*root, path);
}

absl::StatusOr<Principal> Authorize(const AuthTable& table, absl::string_view method,
                                    const CallCredentials& creds) {
  auto required = RequiredRole(method);
  if (!required.ok()) return absl::PermissionDeniedError(required.status().message());
  if (*required == Role::kOpen) return Principal{};
  const Principal* who = nullptr;
  if (creds.authorization.has_value()) {
    constexpr absl::string_view kBearer = "Bearer ";
    const std::string& h = *creds.authorization;
    if (!absl::StartsWith(h, kBearer) || h.size() == kBearer.size()) {
      return absl::UnauthenticatedError(
          "authorization: expected 'Bearer TOKEN' (miroir-ctl --token-file)");
    }
    auto it = table.tokens.find(Sha256Hex(absl::string_view(h).substr(kBearer.size())));
    if (it == table.tokens.end()) {
      return absl::UnauthenticatedError("authorization: unknown bearer token");
    }
    who = &it->second;
  } else {
    for (const std::string& subject : creds.cert_subjects) {
      auto it = table.subjects.find(subject);
      if (it != table.subjects.end()) {
        who = &it->second;
        break;
      }
    }
    if (who == nullptr && !creds.cert_subjects.empty()) {
      return absl::UnauthenticatedError(absl::StrCat("client certificate subject '",
                                                     creds.cert_subjects.front(),
                                                     "' is not in auth.tokens_file"));
    }
  }
  if (who == nullptr) {
    return absl::UnauthenticatedError(
        "no credentials: send 'authorization: Bearer TOKEN' or a client certificate");
  }
  if (!RoleGrants(who->role, *required)) {
    return absl::PermissionDeniedError(absl::StrCat(who->name, " (role ", RoleName(who->role),
                                                    ") may not call ", method.substr(1),
                                                    ": it needs role ", RoleName(*required)));
  }
  return *who;
}

}  // namespace miroir
