// ReshardStepper: the decisions of every reshard (DESIGN §7, docs/resharding.md),
// one tick at a time, as a pure step — state and inputs in, a Change and log
// lines out (raft's Step). Per reshard it runs the entry action of its state
// (create the shadow and publish dual-write, create the per-shard
// RESHARD_BACKFILL / RESHARD_DELTA tasks, the RESHARD_VERIFY task, pause and
// fence the index, flip the generations, drop the retained or abandoned one) and
// advances it when its exit condition holds. All transitions of one step share
// at most one new epoch. The swap's cutover is decided here (its stall, fence
// count and final-delta sources through coordinator/cutover.h);
// coordinator/reshard_runner.cc commits the step and the workers execute its tasks.
//
// No I/O, clock, registry or logger: safe from any thread; tests drive it with a
// hand-built ClusterState and a manual clock (tests/coordinator/reshard_stepper_test.cc).
#ifndef MIROIR_COORDINATOR_RESHARD_STEPPER_H_
#define MIROIR_COORDINATOR_RESHARD_STEPPER_H_

#include "coordinator/cluster_state.h"
#include "coordinator/config.h"
#include "coordinator/reshard_machine.h"
#include "coordinator/step_io.h"

namespace miroir::coordinator {

class ReshardStepper {
 public:
  // `config` must outlive the stepper.
  explicit ReshardStepper(const CoordinatorConfig& config) : config_(config) {}

  // One tick of every reshard that has not ended or failed, written into
  // `change` (events in change->events). Returns the lines to log and the
  // documents the consumed copy tasks backfilled.
  StepOutput Step(const ClusterState& state, const StepInput& in, Change* change) const;

 private:
  const CoordinatorConfig& config_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_RESHARD_STEPPER_H_
