#include "common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace miroir {
namespace {

// Appends `s` as the inside of a JSON string (RFC 8259 escapes; bytes >= 0x80 are
// passed through, so UTF-8 stays UTF-8).
void AppendJsonEscaped(std::string_view s, spdlog::memory_buf_t& dest) {
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        dest.append(std::string_view("\\\""));
        break;
      case '\\':
        dest.append(std::string_view("\\\\"));
        break;
      case '\n':
        dest.append(std::string_view("\\n"));
        break;
      case '\r':
        dest.append(std::string_view("\\r"));
        break;
      case '\t':
        dest.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          dest.append(std::string_view(buf));
        } else {
          dest.push_back(ch);
        }
    }
  }
}

// `%*` in the JSON pattern: the log message, escaped for a JSON string.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    AppendJsonEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

std::string JsonEscaped(std::string_view s) {
  spdlog::memory_buf_t buf;
  AppendJsonEscaped(s, buf);
  return std::string(buf.data(), buf.size());
}

// spdlog's pattern language treats '%' specially; a literal program name must not.
std::string PatternLiteral(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '%') out += '%';
    out += c;
  }
  return out;
}

}  // namespace

absl::Status SetupLogging(const std::string& program, const std::string& format,
                          const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("--log-level: unknown level '", level, "'"));
  }
  std::unique_ptr<spdlog::pattern_formatter> formatter;
  if (format == "text") {
    formatter = std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ " + PatternLiteral(program) + ": %v",
        spdlog::pattern_time_type::utc);
  } else if (format == "json") {
    // One JSON object per line; the message is escaped by JsonMessageFlag.
    formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*');
    formatter->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","program":")" +
                           PatternLiteral(JsonEscaped(program)) + R"(","msg":"%*"})");
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-format: expected text or json, got '", format, "'"));
  }
  spdlog::drop(program);  // SetupLogging may run again (tests); names must be unique
  auto logger = spdlog::stderr_logger_mt(program);
  logger->set_formatter(std::move(formatter));
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

}  // namespace miroir
