#include "common/build_info.h"

#ifndef MIROIR_BUILD_VERSION
#define MIROIR_BUILD_VERSION "unknown"
#endif
#ifndef MIROIR_BUILD_COMMIT
#define MIROIR_BUILD_COMMIT "unknown"
#endif

namespace miroir {

std::string_view BuildVersion() { return MIROIR_BUILD_VERSION; }
std::string_view BuildCommit() { return MIROIR_BUILD_COMMIT; }

void RegisterBuildInfo(MetricsRegistry& registry) {
  registry
      .GetGauge("miroir_build_info", "Always 1; the labels say what this binary was built from.",
                {{"version", std::string(BuildVersion())}, {"commit", std::string(BuildCommit())}})
      .Set(1);
}

}  // namespace miroir
