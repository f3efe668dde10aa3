// libFuzzer target: schedule windows ("22:00-06:00", or a name of
// schedule_windows). The input is split at the first newline: a list of names
// or ranges (comma-separated), then one named window's range text. An accepted
// range has minutes of the day, start != end, and its Range() text parses back
// to the same window; InsideAnyWindow answers for any time.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "coordinator/schedule_window.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void CheckWindow(const miroir::coordinator::TimeWindow& w) {
  MIROIR_FUZZ_CHECK(w.start_minute >= 0 && w.start_minute < 1440, "start is a minute of the day");
  MIROIR_FUZZ_CHECK(w.end_minute >= 0 && w.end_minute < 1440, "end is a minute of the day");
  MIROIR_FUZZ_CHECK(w.start_minute != w.end_minute, "a window is not empty");
  auto back = miroir::coordinator::ParseWindowRange(w.Range());
  MIROIR_FUZZ_CHECK(back.ok(), "Range() parses");
  MIROIR_FUZZ_CHECK(back->start_minute == w.start_minute && back->end_minute == w.end_minute,
                    "Range() round-trips");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  const std::string list = text.substr(0, nl);
  const std::string named_range = nl == std::string::npos ? "" : text.substr(nl + 1);

  auto one = miroir::coordinator::ParseWindowRange(list);
  if (one.ok()) CheckWindow(*one);

  std::vector<std::string> entries = absl::StrSplit(list, ',');
  const std::map<std::string, std::string> named = {{"night", named_range},
                                                    {"off-peak", "02:00-06:00"}};
  auto windows = miroir::coordinator::ResolveWindows(entries, named);
  if (!windows.ok()) {
    MIROIR_FUZZ_CHECK(windows.status().code() == absl::StatusCode::kInvalidArgument,
                      "a window error is INVALID_ARGUMENT");
    return 0;
  }
  for (const auto& w : *windows) CheckWindow(w);
  for (int64_t now : {int64_t{0}, int64_t{-1}, int64_t{1'700'000'000'000},
                      std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    (void)miroir::coordinator::InsideAnyWindow(*windows, now);
    MIROIR_FUZZ_CHECK(miroir::coordinator::UtcHourMinute(now).size() == 5, "HH:MM");
  }
  return 0;
}
