// Injected time source, so state machines and the HLC are tested without sleeps.
#ifndef MIROIR_COMMON_CLOCK_H_
#define MIROIR_COMMON_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace miroir {

// Thread-safe. NowMs() is wall-clock unix milliseconds (may go backwards).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
};

// The system clock plus a fixed offset (the worker's test-only --clock-offset-ms).
class SystemClock : public Clock {
 public:
  explicit SystemClock(int64_t offset_ms = 0) : offset_ms_(offset_ms) {}
  int64_t NowMs() const override;
  // A process-wide instance with no offset.
  static SystemClock* Default();

 private:
  const int64_t offset_ms_;
};

// A clock tests set by hand.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 1'700'000'000'000) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void Set(int64_t ms) { now_ms_.store(ms); }
  void Advance(int64_t ms) { now_ms_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace miroir

#endif  // MIROIR_COMMON_CLOCK_H_
