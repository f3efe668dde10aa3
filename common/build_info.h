// The version and commit this binary was built from (CMake: the project version
// and `git rev-parse --short HEAD` at configure time, "unknown" outside a git
// tree), and the miroir_build_info{version,commit} gauge every program exports.
#ifndef MIROIR_COMMON_BUILD_INFO_H_
#define MIROIR_COMMON_BUILD_INFO_H_

#include <string_view>

#include "common/metrics.h"

namespace miroir {

std::string_view BuildVersion();
std::string_view BuildCommit();

// Sets miroir_build_info{version,commit} = 1 in `registry`. Thread-safe.
void RegisterBuildInfo(MetricsRegistry& registry);

}  // namespace miroir

#endif  // MIROIR_COMMON_BUILD_INFO_H_
