// libFuzzer target: durations ("500ms", "1h30m", "every 6h") as config and flags
// give them. An accepted duration is finite and not negative, and its
// FormatDuration text parses back to it (to the microsecond FormatDuration
// keeps); an accepted schedule is positive.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/duration.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto d = miroir::ParseDuration(text);
  if (d.ok()) {
    MIROIR_FUZZ_CHECK(*d >= absl::ZeroDuration() && *d < absl::InfiniteDuration(),
                      "a duration is finite and not negative");
    auto back = miroir::ParseDuration(miroir::FormatDuration(*d));
    MIROIR_FUZZ_CHECK(back.ok(), "FormatDuration's text parses");
    MIROIR_FUZZ_CHECK(*back == absl::Trunc(*d, absl::Microseconds(1)),
                      "FormatDuration round-trips to the microsecond");
  } else {
    MIROIR_FUZZ_CHECK(d.status().code() == absl::StatusCode::kInvalidArgument,
                      "a duration error is INVALID_ARGUMENT");
  }
  auto every = miroir::ParseSchedule(text);
  if (every.ok()) {
    MIROIR_FUZZ_CHECK(*every > absl::ZeroDuration(), "a schedule is positive");
  }
  return 0;
}
