// libFuzzer target: the tokens file (auth.tokens_file, DESIGN §13). Errors are
// INVALID_ARGUMENT; an accepted table keys tokens by 64 lower-case hex digits,
// and deciding calls against it (a bearer token taken from the input, the
// subjects it names) never crashes and never answers with the token in a
// message.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/auth.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto table = miroir::ParseAuthTable(text, "tokens.yaml");
  if (!table.ok()) {
    MIROIR_FUZZ_CHECK(table.status().code() == absl::StatusCode::kInvalidArgument,
                      "a tokens file error is INVALID_ARGUMENT");
    return 0;
  }
  for (const auto& [hash, who] : table->tokens) {
    MIROIR_FUZZ_CHECK(
        hash.size() == 64 && hash.find_first_not_of("0123456789abcdef") == std::string::npos,
        "tokens are keyed by lower-case hex sha256");
    MIROIR_FUZZ_CHECK(!who.name.empty(), "a token has a name");
  }
  // The input's last line as a bearer token, and every subject as a certificate.
  const std::string token =
      text.substr(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  miroir::CallCredentials bearer;
  bearer.authorization = "Bearer " + token;
  miroir::CallCredentials cert;
  for (const auto& [subject, who] : table->subjects) cert.cert_subjects.push_back(subject);
  for (const char* method :
       {"/miroir.v1.Coordinator/CreatePlan", "/miroir.v1.DataPlane/Write",
        "/miroir.v1.WorkerControl/Register", "/grpc.health.v1.Health/Check", "/nosuch/Method"}) {
    for (const auto* creds : {&bearer, &cert}) {
      auto who = miroir::Authorize(*table, method, *creds);
      if (!who.ok() && token.size() >= 8) {
        MIROIR_FUZZ_CHECK(who.status().message().find(token) == std::string::npos,
                          "a refusal never quotes the token");
      }
    }
  }
  return 0;
}
