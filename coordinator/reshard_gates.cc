#include "coordinator/reshard_gates.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/reshard_names.h"
#include "coordinator/schedule_window.h"

namespace miroir::coordinator {

absl::Status CheckReshardWindow(const CoordinatorConfig& config, int64_t now_ms, bool force,
                                std::vector<std::string>* warnings) {
  auto windows = ResolveWindows(config.resharding.allowed_windows, config.schedule_windows);
  if (!windows.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("resharding.allowed_windows: ", windows.status().message()));
  }
  if (InsideAnyWindow(*windows, now_ms)) return absl::OkStatus();
  std::vector<std::string> ranges;
  for (const auto& w : *windows) {
    ranges.push_back(w.name == w.Range() ? w.Range() : w.name + " " + w.Range());
  }
  const std::string where =
      absl::StrCat("now (", UtcHourMinute(now_ms), " UTC) is outside the resharding window(s) ",
                   absl::StrJoin(ranges, ", "));
  if (force) {
    if (warnings != nullptr) warnings->push_back(absl::StrCat("forced: ", where));
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("reshard refused: ", where, "; use --force to run anyway"));
}

absl::Status CheckReshardStart(const ReshardStartRequest& req, const CoordinatorConfig& config,
                               const std::vector<v1::ReshardRecord>& reshards,
                               bool move_active_on_index, int64_t now_ms,
                               std::vector<std::string>* warnings) {
  if (!config.resharding.enabled) {
    return absl::FailedPreconditionError("reshard refused: resharding.enabled is false");
  }
  if (req.index.empty()) return absl::InvalidArgumentError("index: must not be empty");
  if (req.new_shards == 0) return absl::InvalidArgumentError("shards: must be >= 1");
  if (req.new_shards == req.current_shards) {
    return absl::InvalidArgumentError(
        absl::StrCat("shards: index ", req.index, " already has ", req.current_shards, " shards"));
  }
  for (const v1::ReshardRecord& r : reshards) {
    if (r.index() != req.index || !ReshardMachine::BlocksNewReshard(r)) continue;
    if (r.state() == v1::RESHARD_RETENTION) {
      return absl::FailedPreconditionError(absl::StrCat(
          "reshard refused: reshard ", r.id(), " of index ", req.index,
          " is in retention; run `miroir-ctl reshard complete --index ", req.index, "` first"));
    }
    return absl::FailedPreconditionError(absl::StrCat("reshard refused: reshard ", r.id(),
                                                      " of index ", req.index, " is in state ",
                                                      ReshardStateName(r.state())));
  }
  if (move_active_on_index) {
    return absl::FailedPreconditionError(
        absl::StrCat("reshard refused: a move on index ", req.index, " is unfinished"));
  }
  return CheckReshardWindow(config, now_ms, req.force, warnings);
}

}  // namespace miroir::coordinator
