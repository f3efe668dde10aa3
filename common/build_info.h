// What this binary is: the project version (CMake's project(VERSION)) and the
// git commit it was built from ("unknown" outside a git checkout; "-dirty"
// when the tree had uncommitted changes). Answered by every program's
// --version, sent by a worker when it registers (miroir-ctl status), and
// exported as the miroir_build_info gauge.
#ifndef MIROIR_COMMON_BUILD_INFO_H_
#define MIROIR_COMMON_BUILD_INFO_H_

#include <string>

#include "common/metrics.h"

namespace miroir {

// "0.1.0"
const char* ProjectVersion();
// "1a2b3c4d5e6f", "1a2b3c4d5e6f-dirty" or "unknown".
const char* GitCommit();
// "0.1.0+1a2b3c4d5e6f": what a worker reports and status shows.
std::string BuildVersion();
// "miroir-worker 0.1.0 (commit 1a2b3c4d5e6f)": the --version line of a program.
std::string VersionLine(const std::string& program);

// Sets miroir_build_info{version,commit} = 1 in `registry` (the gauge every
// program exports, so an alert can tell a mixed-version fleet). Thread-safe.
void RegisterBuildInfo(MetricsRegistry& registry);

}  // namespace miroir

#endif  // MIROIR_COMMON_BUILD_INFO_H_
