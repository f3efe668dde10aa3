// Schedule windows (DESIGN §6, §7): named windows or "HH:MM-HH:MM" UTC ranges,
// which may wrap midnight ("22:00-06:00"). Pure logic.
#ifndef MIROIR_COORDINATOR_SCHEDULE_WINDOW_H_
#define MIROIR_COORDINATOR_SCHEDULE_WINDOW_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace miroir::coordinator {

struct TimeWindow {
  std::string name;      // configured name, or the range text itself
  int start_minute = 0;  // minute of the UTC day, 0..1439
  int end_minute = 0;    // exclusive; < start_minute means it wraps midnight
  bool Contains(int minute_of_day) const;
  std::string Range() const;  // "HH:MM-HH:MM"
};

// Parses "HH:MM-HH:MM". INVALID_ARGUMENT naming the text when malformed or empty.
absl::StatusOr<TimeWindow> ParseWindowRange(std::string_view text);

// Each entry is a name of `named` or a range. NOT_FOUND-style INVALID_ARGUMENT
// ("unknown schedule window 'x'") for an unknown name.
absl::StatusOr<std::vector<TimeWindow>> ResolveWindows(
    const std::vector<std::string>& names_or_ranges,
    const std::map<std::string, std::string>& named);

// True when `windows` is empty or one contains the UTC minute of `now_ms`.
bool InsideAnyWindow(const std::vector<TimeWindow>& windows, int64_t now_ms);

// "HH:MM" UTC of a unix-ms time.
std::string UtcHourMinute(int64_t now_ms);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_SCHEDULE_WINDOW_H_
