// libFuzzer target: the coordinator's YAML config (--config FILE, `config
// reload`). Any text must parse to a config or to INVALID_ARGUMENT, and a parsed
// config must validate to OK or INVALID_ARGUMENT: never a crash, an escaping
// yaml-cpp exception or another code.
#include <cstddef>
#include <cstdint>
#include <string>

#include "coordinator/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = miroir::coordinator::ParseCoordinatorConfig(text, "fuzz.yaml");
  if (!config.ok()) {
    MIROIR_FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument,
                      "a config parse error is INVALID_ARGUMENT");
    return 0;
  }
  absl::Status valid = miroir::coordinator::ValidateCoordinatorConfig(*config);
  MIROIR_FUZZ_CHECK(valid.ok() || valid.code() == absl::StatusCode::kInvalidArgument,
                    "a config validation error is INVALID_ARGUMENT");
  return 0;
}
