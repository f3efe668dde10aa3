#include "common/version.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_format.h"

namespace miroir {

std::string Version::ToKey() const { return absl::StrFormat("%016x:%016x", hlc, writer); }

bool Version::FromKey(const std::string& key, Version* out) {
  if (key.size() != 33 || key[16] != ':') return false;
  auto parse = [](std::string_view s, uint64_t* v) {
    uint64_t r = 0;
    for (char c : s) {
      int d;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else
        return false;
      r = (r << 4) | static_cast<uint64_t>(d);
    }
    *v = r;
    return true;
  };
  std::string_view k(key);
  return parse(k.substr(0, 16), &out->hlc) && parse(k.substr(17), &out->writer);
}

Version HybridClock::Next(uint64_t at_least) {
  const uint64_t physical = Version::Pack(clock_->NowMs(), 0);
  absl::MutexLock l(&mu_);
  uint64_t floor = std::max(last_, at_least);
  last_ = std::max(physical, floor + 1);
  return Version{last_, writer_};
}

void HybridClock::Observe(uint64_t hlc) {
  absl::MutexLock l(&mu_);
  last_ = std::max(last_, hlc);
}

uint64_t HybridClock::Last() const {
  absl::MutexLock l(&mu_);
  return last_;
}

uint64_t HybridClock::RandomWriterId() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0) v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return v;
}

}  // namespace miroir
