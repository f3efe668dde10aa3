// PlanRunner: drives every running move through its states (DESIGN §6). Each
// tick it performs the entry action of each move's state (publish an epoch, lease
// the state's task) and advances it when its exit condition holds (task
// completed, every live worker acked, timers). All transitions of one tick are
// one commit with at most one new epoch. Entry actions are idempotent, so after a
// restart the runner re-runs the current state's action; it acts on worker acks
// only once one lease TTL plus max_clock_drift has passed since the start.
//
// Called from the coordinator's runner thread only (or a test, by hand).
#ifndef MIROIR_COORDINATOR_PLAN_RUNNER_H_
#define MIROIR_COORDINATOR_PLAN_RUNNER_H_

#include <cstdint>

namespace miroir::coordinator {

class Coordinator;

class PlanRunner {
 public:
  explicit PlanRunner(Coordinator* c) : c_(c) {}
  // One step of every plan, then task leasing.
  void Tick();

 private:
  void ReleaseTasks();
  void StepPlans();
  void LeaseTasks();
  Coordinator* const c_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_PLAN_RUNNER_H_
