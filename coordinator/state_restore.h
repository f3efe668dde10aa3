// Restoring the coordinator's SQLite state from a backup (`miroir-ctl backup`,
// `miroir-coordinator --restore FILE`; docs/runbook.md). Runs in main before
// the state is opened; single-threaded.
#ifndef MIROIR_COORDINATOR_STATE_RESTORE_H_
#define MIROIR_COORDINATOR_STATE_RESTORE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace miroir::coordinator {

// How far a restore raises the epoch: the lost coordinator may have published
// epochs after the backup was taken, and workers apply only newer tables while
// store fences refuse older epochs, so the restored state must start above
// anything published since (2^20 epochs after the backup).
inline constexpr uint64_t kRestoreEpochGap = uint64_t{1} << 20;

struct RestoreResult {
  uint64_t backup_epoch = 0;  // the epoch stored in the backup
  uint64_t epoch = 0;         // the epoch the restored state starts at
  size_t plans = 0;           // plans in it (running ones resume)
};

// Copies `backup` into `state_file` (which must not exist: FAILED_PRECONDITION),
// checks that it loads as a coordinator state (INVALID_ARGUMENT naming the file
// otherwise, nothing left behind), and commits the epoch raised by
// `epoch_gap`. The copy is written beside the target and renamed into place.
absl::StatusOr<RestoreResult> RestoreStateFile(const std::string& backup,
                                               const std::string& state_file,
                                               uint64_t epoch_gap = kRestoreEpochGap);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_STATE_RESTORE_H_
