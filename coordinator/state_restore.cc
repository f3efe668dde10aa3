#include "coordinator/state_restore.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "coordinator/cluster_state.h"
#include "coordinator/sqlite_state_store.h"

namespace miroir::coordinator {

absl::StatusOr<RestoreResult> RestoreStateFile(const std::string& backup,
                                               const std::string& state_file, uint64_t epoch_gap) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(backup, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("--restore: ", backup, " is not a file"));
  }
  if (fs::exists(state_file, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--restore: ", state_file,
        " already exists; restore into an empty data dir (move the old one away first)"));
  }
  const std::string staging = state_file + ".restoring";
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(staging + suffix, ec);
  if (!fs::copy_file(backup, staging, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--restore: cannot copy ", backup, " to ", staging, ": ", ec.message()));
  }
  RestoreResult out;
  absl::Status st = [&]() -> absl::Status {
    auto store = SqliteStateStore::Open(staging);
    if (!store.ok()) return store.status();
    auto loaded = (*store)->Load();
    if (!loaded.ok()) return loaded.status();
    auto state = ClusterState::FromLoaded(*loaded);
    if (!state.ok()) return state.status();
    if (!state->initialized) return absl::InvalidArgumentError("the cluster was never initialised");
    out.backup_epoch = loaded->epoch;
    out.plans = state->plans.size();
    out.epoch = loaded->epoch + epoch_gap;
    StateWrite raise;
    raise.epoch = out.epoch;
    return (*store)->Commit(raise);
  }();
  if (!st.ok()) {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(staging + suffix, ec);
    return absl::InvalidArgumentError(
        absl::StrCat("--restore: ", backup, " is not a usable coordinator state: ", st.message()));
  }
  // Closed above: its WAL is checkpointed into the file. Move it (and any WAL
  // left) into place, the main file last.
  for (const char* suffix : {"-wal", "-shm", ""}) {
    if (!fs::exists(staging + suffix, ec)) continue;
    fs::rename(staging + suffix, state_file + suffix, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("--restore: cannot move ", staging, suffix, " into place: ", ec.message()));
    }
  }
  return out;
}

}  // namespace miroir::coordinator
