#include "coordinator/schedule_window.h"

#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace miroir::coordinator {
namespace {

constexpr int kMinutesPerDay = 24 * 60;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// "H:MM" or "HH:MM" -> minute of day; -1 when malformed.
int ParseHourMinute(std::string_view s) {
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 2 || s.size() != colon + 3) {
    return -1;
  }
  int hour = 0;
  for (size_t i = 0; i < colon; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return -1;
    hour = hour * 10 + (s[i] - '0');
  }
  if (!std::isdigit(static_cast<unsigned char>(s[colon + 1])) ||
      !std::isdigit(static_cast<unsigned char>(s[colon + 2]))) {
    return -1;
  }
  const int minute = (s[colon + 1] - '0') * 10 + (s[colon + 2] - '0');
  if (hour > 23 || minute > 59) return -1;
  return hour * 60 + minute;
}

std::string HourMinute(int minute_of_day) {
  return absl::StrFormat("%02d:%02d", minute_of_day / 60, minute_of_day % 60);
}

// UTC minute of the day of a unix-ms time (floored, also before 1970).
int MinuteOfDay(int64_t now_ms) {
  int64_t minutes = now_ms / 60000;
  if (now_ms % 60000 < 0) --minutes;
  int64_t m = minutes % kMinutesPerDay;
  if (m < 0) m += kMinutesPerDay;
  return static_cast<int>(m);
}

bool LooksLikeRange(std::string_view s) {
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c)) || c == ':') continue;
    if (c == '-' || std::isspace(static_cast<unsigned char>(c))) continue;
    return false;
  }
  return !s.empty();
}

}  // namespace

bool TimeWindow::Contains(int minute_of_day) const {
  if (start_minute <= end_minute) {
    return minute_of_day >= start_minute && minute_of_day < end_minute;
  }
  return minute_of_day >= start_minute || minute_of_day < end_minute;  // wraps midnight
}

std::string TimeWindow::Range() const {
  return absl::StrCat(HourMinute(start_minute), "-", HourMinute(end_minute));
}

absl::StatusOr<TimeWindow> ParseWindowRange(std::string_view text) {
  const std::string_view s = Trim(text);
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed schedule window '", std::string(text), "': ", std::string(why)));
  };
  if (s.empty()) return bad("empty (expected HH:MM-HH:MM UTC)");
  const size_t dash = s.find('-');
  if (dash == std::string_view::npos) return bad("expected HH:MM-HH:MM UTC");
  const int start = ParseHourMinute(Trim(s.substr(0, dash)));
  const int end = ParseHourMinute(Trim(s.substr(dash + 1)));
  if (start < 0 || end < 0) return bad("expected HH:MM-HH:MM UTC, hours 00-23, minutes 00-59");
  if (start == end) return bad("start equals end (an empty window)");
  TimeWindow w;
  w.name = std::string(s);
  w.start_minute = start;
  w.end_minute = end;
  return w;
}

absl::StatusOr<std::vector<TimeWindow>> ResolveWindows(
    const std::vector<std::string>& names_or_ranges,
    const std::map<std::string, std::string>& named) {
  std::vector<TimeWindow> out;
  for (const std::string& entry : names_or_ranges) {
    const std::string key(Trim(entry));
    auto it = named.find(key);
    if (it != named.end()) {
      auto w = ParseWindowRange(it->second);
      if (!w.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("schedule window '", key, "': ", w.status().message()));
      }
      w->name = key;
      out.push_back(*std::move(w));
      continue;
    }
    if (LooksLikeRange(key)) {
      auto w = ParseWindowRange(key);
      if (!w.ok()) return w.status();
      out.push_back(*std::move(w));
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown schedule window '", key,
                                                   "' (not in schedule_windows, not HH:MM-HH:MM)"));
  }
  return out;
}

bool InsideAnyWindow(const std::vector<TimeWindow>& windows, int64_t now_ms) {
  if (windows.empty()) return true;
  const int minute = MinuteOfDay(now_ms);
  for (const TimeWindow& w : windows) {
    if (w.Contains(minute)) return true;
  }
  return false;
}

std::string UtcHourMinute(int64_t now_ms) { return HourMinute(MinuteOfDay(now_ms)); }

}  // namespace miroir::coordinator
