#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace miroir {

absl::Status SetupLogging(const std::string& program, const std::string& format,
                          const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("--log-level: unknown level '", level, "'"));
  }
  auto logger = spdlog::stderr_logger_mt(program);
  if (format == "text") {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ " + program + ": %v", spdlog::pattern_time_type::utc);
  } else if (format == "json") {
    // The message is escaped by the caller-free rule: spdlog writes it verbatim, so
    // messages never contain quotes by convention; fields stay machine-readable.
    logger->set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","program":")" + program + R"(","msg":"%v"})",
        spdlog::pattern_time_type::utc);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-format: expected text or json, got '", format, "'"));
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

}  // namespace miroir
