// libFuzzer target: the fleet file of `miroir-ctl cluster init` (and
// InitCluster). Errors are INVALID_ARGUMENT; an accepted spec passes its own
// cross-checks again (ParseFleetSpec validates) and every index's RF fits every
// group.
#include <cstddef>
#include <cstdint>
#include <string>

#include "coordinator/fleet_spec.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto spec = miroir::coordinator::ParseFleetSpec(text, "fleet.yaml");
  if (!spec.ok()) {
    MIROIR_FUZZ_CHECK(spec.status().code() == absl::StatusCode::kInvalidArgument,
                      "a fleet spec error is INVALID_ARGUMENT");
    return 0;
  }
  MIROIR_FUZZ_CHECK(miroir::coordinator::ValidateFleetSpec(*spec).ok(),
                    "an accepted fleet spec validates");
  for (const auto& index : spec->indexes) {
    MIROIR_FUZZ_CHECK(index.shards >= 1 && index.rf >= 1, "shards and rf are positive");
    for (const auto& group : spec->groups) {
      MIROIR_FUZZ_CHECK(index.rf <= group.nodes.size(), "rf fits every group");
    }
  }
  return 0;
}
