// What the pure steppers (move_stepper.h, reshard_stepper.h) take besides the
// state, and what they hand back besides the Change: the time, whether workers'
// acks may be trusted yet and who acked what, in; lines to log and counters to
// bump, out. Their drivers (plan_runner.cc, reshard_runner.cc) read the clock and
// the worker registry before a step and log and count after the commit, as raft's
// Step leaves sending its messages to the caller.
#ifndef MIROIR_COORDINATOR_STEP_IO_H_
#define MIROIR_COORDINATOR_STEP_IO_H_

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/cluster_state.h"
#include "coordinator/config.h"
#include "coordinator/cutover.h"

namespace miroir::coordinator {

struct StepInput {
  int64_t now_ms = 0;
  // One lease TTL plus max_clock_drift has passed since the coordinator started:
  // every worker that acked an older view has expired or acked again.
  bool acks_ready = false;
  // Every live worker acked epoch E. REQUIRES: set (steppers call it).
  cutover::AckLookup all_live_acked;
};

struct StepLogLine {
  enum class Level { kInfo, kWarn, kError };
  Level level = Level::kInfo;
  std::string text;
};

struct StepOutput {
  std::vector<StepLogLine> log;
  // Documents copied into reshard shadows by the tasks this step consumed.
  uint64_t documents_backfilled = 0;

  void Info(std::string text) { log.push_back({StepLogLine::Level::kInfo, std::move(text)}); }
  void Warn(std::string text) { log.push_back({StepLogLine::Level::kWarn, std::move(text)}); }
  void Error(std::string text) { log.push_back({StepLogLine::Level::kError, std::move(text)}); }
};

// What one step of a stepper reads and writes: the snapshot, the change it
// builds, the config, the input and the output; the epoch a publishing
// transition announces and the nodes marked failed. The per-tick classes of
// move_stepper.cc and reshard_stepper.cc derive from it.
class StepContext {
 protected:
  StepContext(const ClusterState& s, Change* c, const CoordinatorConfig& cfg, const StepInput& in,
              StepOutput* out)
      : s_(s),
        c_(c),
        cfg_(cfg),
        now_(in.now_ms),
        in_(in),
        out_(out),
        new_epoch_(s.epoch + 1),
        failed_(s.FailedNodes()) {}

  const ClusterState& s_;
  Change* c_;
  const CoordinatorConfig& cfg_;
  const int64_t now_;
  const StepInput& in_;
  StepOutput* out_;
  const uint64_t new_epoch_;
  const std::set<std::string> failed_;

  // The stored task `id` names (nullptr for 0 or a task no longer stored).
  const TaskRecord* TaskOf(uint64_t id) const {
    if (id == 0) return nullptr;
    auto it = s_.tasks.find(id);
    return it == s_.tasks.end() ? nullptr : &it->second;
  }
  // Deletes the task `holder` (a move, a reshard's shard entry) names -- its result
  // has been used, or is not wanted -- and clears the reference.
  template <typename Holder>
  void DropTask(Holder* holder) {
    if (holder->task_id() != 0) c_->deleted_tasks.insert(holder->task_id());
    holder->set_task_id(0);
  }
  // Every live worker acked the epoch `x` (a move, a reshard) waits for, once
  // acks may be trusted (cutover::Acked).
  template <typename Waiting>
  bool Acked(const Waiting& x) const {
    return cutover::Acked(in_.acks_ready, x.wait_epoch(), in_.all_live_acked);
  }
};

// Runs one `Tick` (a StepContext with Run()) and returns its output.
template <typename Tick>
StepOutput RunStep(const ClusterState& s, Change* c, const CoordinatorConfig& cfg,
                   const StepInput& in) {
  StepOutput out;
  Tick(s, c, cfg, in, &out).Run();
  return out;
}

// After a step's commit: writes `out.log` to the process log when `commit` is
// OK; else nothing of the step happened, so its lines are not logged as if it
// had (a deposed leader's last step fails here; the next leader redoes it) —
// one error line names `runner`, the failure and how many lines were dropped.
void LogStepOutput(const StepOutput& out, const absl::Status& commit, std::string_view runner);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_STEP_IO_H_
