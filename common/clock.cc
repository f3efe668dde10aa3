#include "common/clock.h"

#include <chrono>

namespace miroir {

int64_t SystemClock::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count() + offset_ms_;
}

SystemClock* SystemClock::Default() {
  static SystemClock* clock = new SystemClock(0);
  return clock;
}

}  // namespace miroir
