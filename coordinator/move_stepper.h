// MoveStepper: the decisions of every running move (DESIGN §6), one tick at a
// time, as a pure step — state and inputs in, a Change and log lines out (raft's
// Step). Per move it runs the entry action of its state (create the state's task,
// publish an epoch) and advances it when its exit condition holds (task done,
// every live worker acked, the stall and drain timers); then it recomputes the
// routes of the shards it touched, ends plans whose moves all ended, and moves
// or drops recovery passes. All transitions of one step share at most one new
// epoch (Change::bump_epoch). A move's cutover — pause, fence, final delta,
// switch owners — is decided here; coordinator/plan_runner.cc commits the step,
// leases its tasks and the workers execute them (worker/tasks/).
//
// No I/O, clock, registry or logger: safe from any thread; tests drive it with a
// hand-built ClusterState and a manual clock (tests/coordinator/move_stepper_test.cc).
#ifndef MIROIR_COORDINATOR_MOVE_STEPPER_H_
#define MIROIR_COORDINATOR_MOVE_STEPPER_H_

#include "coordinator/cluster_state.h"
#include "coordinator/config.h"
#include "coordinator/step_io.h"

namespace miroir::coordinator {

class MoveStepper {
 public:
  // `config` must outlive the stepper.
  explicit MoveStepper(const CoordinatorConfig& config) : config_(config) {}

  // One tick of every running, aborting or paused plan over `state`, written
  // into `change` (events in change->events). Returns the lines to log.
  StepOutput Step(const ClusterState& state, const StepInput& in, Change* change) const;

 private:
  const CoordinatorConfig& config_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_MOVE_STEPPER_H_
