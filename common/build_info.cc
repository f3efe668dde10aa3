#include "common/build_info.h"

#include "absl/strings/str_cat.h"
#include "miroir_build_info_gen.h"

namespace miroir {

const char* ProjectVersion() { return MIROIR_PROJECT_VERSION; }
const char* GitCommit() { return MIROIR_GIT_COMMIT; }
std::string BuildVersion() { return absl::StrCat(ProjectVersion(), "+", GitCommit()); }
std::string VersionLine(const std::string& program) {
  return absl::StrCat(program, " ", ProjectVersion(), " (commit ", GitCommit(), ")");
}

void RegisterBuildInfo(MetricsRegistry& registry) {
  registry
      .GetGauge("miroir_build_info", "Always 1; the labels say what this binary was built from.",
                {{"version", ProjectVersion()}, {"commit", GitCommit()}})
      .Set(1);
}

}  // namespace miroir
