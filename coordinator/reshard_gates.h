// Gates a reshard must pass (DESIGN §7, CLI.md "Resharding"): at start and again
// before the swap. Pure checks; one-line messages naming what blocked. No I/O.
#ifndef MIROIR_COORDINATOR_RESHARD_GATES_H_
#define MIROIR_COORDINATOR_RESHARD_GATES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/config.h"
#include "coordinator/reshard_machine.h"

namespace miroir::coordinator {

struct ReshardStartRequest {
  std::string index;            // the index uid
  uint32_t current_shards = 0;  // S of its LIVE generation
  uint32_t new_shards = 0;      // requested S_new
  bool force = false;           // bypass the window gate (recorded as a warning)
};

// Refuses, in this order: resharding.enabled false (FAILED_PRECONDITION); an empty
// index or shards 0 or equal to the current S (INVALID_ARGUMENT naming the field);
// another reshard of the index not terminal, including one in retention until
// `complete` (FAILED_PRECONDITION naming it); an unfinished move touching the
// index (`move_active_on_index`); outside resharding.allowed_windows unless force
// (then a warning is appended to `warnings`).
absl::Status CheckReshardStart(const ReshardStartRequest& req, const CoordinatorConfig& config,
                               const std::vector<v1::ReshardRecord>& reshards,
                               bool move_active_on_index, int64_t now_ms,
                               std::vector<std::string>* warnings);

// The window gate alone (checked again before the swap): FAILED_PRECONDITION naming
// the current UTC time and the windows; with `force` OK plus a warning. An unknown
// window name is INVALID_ARGUMENT naming resharding.allowed_windows.
absl::Status CheckReshardWindow(const CoordinatorConfig& config, int64_t now_ms, bool force,
                                std::vector<std::string>* warnings);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_RESHARD_GATES_H_
