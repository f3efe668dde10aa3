// Versions (DESIGN §2): one u64 hybrid-logical-clock value per write,
// (physical ms << 16 | logical), plus the writer id that stamped it. Higher wins;
// the writer id breaks ties.
#ifndef MIROIR_COMMON_VERSION_H_
#define MIROIR_COMMON_VERSION_H_

#include <compare>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace miroir {

struct Version {
  uint64_t hlc = 0;     // (physical ms << 16) | logical
  uint64_t writer = 0;  // random per process start

  auto operator<=>(const Version&) const = default;
  bool IsZero() const { return hlc == 0 && writer == 0; }

  static constexpr int kLogicalBits = 16;
  static uint64_t Pack(int64_t physical_ms, uint32_t logical) {
    return (static_cast<uint64_t>(physical_ms) << kLogicalBits) | (logical & 0xFFFF);
  }
  int64_t PhysicalMs() const { return static_cast<int64_t>(hlc >> kLogicalBits); }

  // Fixed-width text "HHHHHHHHHHHHHHHH:WWWWWWWWWWWWWWWW" (hex) whose byte order is
  // the version order; the store compares versions in this form (Lua numbers are
  // doubles and cannot hold a u64).
  std::string ToKey() const;
  // Inverse of ToKey; returns false on malformed text.
  static bool FromKey(const std::string& key, Version* out);
};

// Hybrid logical clock. Thread-safe. Every Next() is strictly greater than every
// value it returned or observed before, even when the physical clock goes back.
class HybridClock {
 public:
  HybridClock(const Clock* clock, uint64_t writer_id) : clock_(clock), writer_(writer_id) {}

  // A new version strictly above every earlier one and above `at_least`.
  Version Next(uint64_t at_least = 0);
  // Advances past a version seen elsewhere (e.g. a store's "stored is newer").
  void Observe(uint64_t hlc);
  uint64_t writer() const { return writer_; }
  uint64_t Last() const;

  // A random non-zero writer id (use once per process start).
  static uint64_t RandomWriterId();

 private:
  const Clock* clock_;
  const uint64_t writer_;
  mutable absl::Mutex mu_;
  uint64_t last_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace miroir

#endif  // MIROIR_COMMON_VERSION_H_
