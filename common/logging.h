// Logging setup shared by the programs: spdlog to stderr, text or JSON lines.
#ifndef MIROIR_COMMON_LOGGING_H_
#define MIROIR_COMMON_LOGGING_H_

#include <string>

#include "absl/status/status.h"

namespace miroir {

// format: "text" or "json"; level: trace|debug|info|warn|error. Call once in main.
// INVALID_ARGUMENT naming the flag on an unknown value.
absl::Status SetupLogging(const std::string& program, const std::string& format,
                          const std::string& level = "info");

}  // namespace miroir

#endif  // MIROIR_COMMON_LOGGING_H_
