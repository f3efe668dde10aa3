// Human durations in config and flags: "500ms", "2s", "10m", "1h", "7d",
// combinations ("1h30m"), and "every 6h" for schedules.
#ifndef MIROIR_COMMON_DURATION_H_
#define MIROIR_COMMON_DURATION_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace miroir {

// INVALID_ARGUMENT ("malformed duration 'x'") on bad text; negative never accepted.
absl::StatusOr<absl::Duration> ParseDuration(std::string_view text);
// "every 6h" -> 6h. The word "every" is optional.
absl::StatusOr<absl::Duration> ParseSchedule(std::string_view text);
// Shortest text ParseDuration accepts back, e.g. "1h30m", "500ms".
std::string FormatDuration(absl::Duration d);

}  // namespace miroir

#endif  // MIROIR_COMMON_DURATION_H_
