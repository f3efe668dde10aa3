// Authorization (DESIGN §13): who may call which RPC. The role table (bearer
// tokens by SHA-256, client-certificate subjects) parsed from auth.tokens_file,
// the method -> required role map, and the pure decision. No I/O but
// LoadAuthTable; any thread. The gRPC glue is common/auth_processor.h.
#ifndef MIROIR_COMMON_AUTH_H_
#define MIROIR_COMMON_AUTH_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace miroir {

enum class Role {
  kOpen,    // no credentials needed (health checks, reflection)
  kAdmin,   // every mutation of Coordinator, Reshard, AntiEntropy (and their reads)
  kViewer,  // reads and watches of those services
  kClient,  // DataPlane
  kWorker,  // WorkerControl
};

absl::string_view RoleName(Role r);
absl::StatusOr<Role> ParseRole(absl::string_view name);

// The role a full method name ("/miroir.v1.Coordinator/CreatePlan") requires.
// NOT_FOUND for a method no rule names: refused, so a new RPC cannot slip through.
absl::StatusOr<Role> RequiredRole(absl::string_view full_method);

// Whether holding `held` allows a call requiring `required` (admin includes viewer).
bool RoleGrants(Role held, Role required);

// Who made a call: a token's name or a certificate subject, and its role.
// The AuthContext property the auth processor adds to every admitted call: the
// principal's name (token name or certificate subject), for the audit trail.
inline constexpr char kPrincipalProperty[] = "miroir.principal";

struct Principal {
  std::string name;
  Role role = Role::kOpen;
};

// The parsed tokens file: tokens keyed by lower-case hex SHA-256, subjects verbatim.
struct AuthTable {
  std::map<std::string, Principal> tokens;
  std::map<std::string, Principal> subjects;
};

// Parses the YAML tokens file; errors are INVALID_ARGUMENT "SOURCE:LINE: FIELD: what".
absl::StatusOr<AuthTable> ParseAuthTable(const std::string& text, const std::string& source);
absl::StatusOr<AuthTable> LoadAuthTable(const std::string& path);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

// The credentials a call arrived with.
struct CallCredentials {
  std::optional<std::string> authorization;  // the header's value, if sent
  std::vector<std::string> cert_subjects;    // verified client-certificate subjects
};

// Decides one call. Open methods -> an unnamed principal. A bearer token wins over
// a certificate. UNAUTHENTICATED: no or unknown credentials; PERMISSION_DENIED:
// known principal without the role; NOT_FOUND from RequiredRole is reported as
// PERMISSION_DENIED. Messages never contain the token.
absl::StatusOr<Principal> Authorize(const AuthTable& table, absl::string_view full_method,
                                    const CallCredentials& creds);

}  // namespace miroir

#endif  // MIROIR_COMMON_AUTH_H_
