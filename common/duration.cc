#include "common/duration.h"

#include <cctype>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace miroir {
namespace {

struct Unit {
  const char* suffix;
  absl::Duration size;
};

// Longest suffixes first so "ms" is not read as "m" followed by "s".
const Unit kUnits[] = {
    {"ms", absl::Milliseconds(1)}, {"us", absl::Microseconds(1)}, {"d", absl::Hours(24)},
    {"h", absl::Hours(1)},         {"m", absl::Minutes(1)},       {"s", absl::Seconds(1)},
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

absl::Status Malformed(std::string_view text) {
  return absl::InvalidArgumentError(absl::StrCat("malformed duration '", std::string(text),
                                                 "' (expected e.g. 500ms, 2s, 10m, 1h30m, 7d)"));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text) {
  const std::string_view s = Trim(text);
  if (s.empty()) return Malformed(text);
  if (s == "0") return absl::ZeroDuration();
  absl::Duration total = absl::ZeroDuration();
  size_t i = 0;
  while (i < s.size()) {
    // number: digits, optionally '.' digits
    uint64_t whole = 0;
    size_t digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (whole > (UINT64_MAX - 9) / 10) return Malformed(text);
      whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
      ++i;
      ++digits;
    }
    double fraction = 0;
    if (i < s.size() && s[i] == '.') {
      ++i;
      double scale = 0.1;
      size_t frac_digits = 0;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        fraction += scale * (s[i] - '0');
        scale /= 10;
        ++i;
        ++frac_digits;
      }
      if (frac_digits == 0) return Malformed(text);
    }
    if (digits == 0) return Malformed(text);
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      std::string_view suffix(u.suffix);
      if (s.substr(i, suffix.size()) == suffix) {
        unit = &u;
        i += suffix.size();
        break;
      }
    }
    if (unit == nullptr) return Malformed(text);
    if (whole > static_cast<uint64_t>(INT64_MAX / 2)) return Malformed(text);
    total += unit->size * static_cast<int64_t>(whole) + unit->size * fraction;
    if (total == absl::InfiniteDuration()) return Malformed(text);
  }
  return total;
}

absl::StatusOr<absl::Duration> ParseSchedule(std::string_view text) {
  std::string_view s = Trim(text);
  constexpr std::string_view kEvery = "every";
  if (s.substr(0, kEvery.size()) == kEvery) {
    s.remove_prefix(kEvery.size());
    if (s.empty() || !std::isspace(static_cast<unsigned char>(s.front()))) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed schedule '", std::string(text), "' (expected e.g. every 6h)"));
    }
  }
  auto d = ParseDuration(s);
  if (!d.ok() || *d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed schedule '", std::string(text), "' (expected e.g. every 6h)"));
  }
  return *d;
}

std::string FormatDuration(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return "0s";
  std::string out;
  const Unit order[] = {{"d", absl::Hours(24)},        {"h", absl::Hours(1)},
                        {"m", absl::Minutes(1)},       {"s", absl::Seconds(1)},
                        {"ms", absl::Milliseconds(1)}, {"us", absl::Microseconds(1)}};
  absl::Duration rest = d;
  for (const Unit& u : order) {
    const int64_t n = absl::IDivDuration(rest, u.size, &rest);
    if (n > 0) absl::StrAppend(&out, n, u.suffix);
  }
  return out.empty() ? "0s" : out;
}

}  // namespace miroir
