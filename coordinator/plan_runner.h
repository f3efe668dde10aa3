// PlanRunner: the driver of every running move (DESIGN §6). Each tick it releases
// expired leases, runs MoveStepper::Step (coordinator/move_stepper.h: every
// decision, pure) inside one commit with at most one new epoch, logs what the step
// returned, and leases tasks to workers (the cutover's fence and final delta
// leased in the commit that creates them). Entry actions are idempotent, so after
// a restart the stepper re-runs the current state's action; acks are trusted
// (StepInput::acks_ready) only once one lease TTL plus max_clock_drift has passed
// since the start.
//
// Called from the coordinator's runner thread only (or a test, by hand).
#ifndef MIROIR_COORDINATOR_PLAN_RUNNER_H_
#define MIROIR_COORDINATOR_PLAN_RUNNER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "coordinator/cluster_state.h"

namespace miroir::coordinator {

class Coordinator;

class PlanRunner {
 public:
  explicit PlanRunner(Coordinator* c) : c_(c) {}
  // One step of every plan, then task leasing.
  void Tick();

 private:
  struct Lease {
    uint64_t task = 0;
    std::string worker;
  };
  void ReleaseTasks();
  void StepPlans();
  void LeaseTasks();
  // Connected live workers' max_tasks minus the tasks `s` leases to them.
  std::map<std::string, int64_t> FreeSlots(const ClusterState& s);
  friend class ReshardRunner;  // leases its node tasks in the commit that creates them
  // Leases, inside the commit that creates them, the cutover tasks (FENCE and
  // FINAL_DELTA of a move whose writes are held) and a reshard's node-batched
  // tasks (its swap's fences and final delta, its catch-up rounds) new in
  // `change`: their lease generation is raised in `change`; SendLeases sends
  // them once it committed. One commit less on the write stall's critical path
  // per cutover, and per catch-up round.
  std::vector<Lease> LeaseNewCutoverTasks(const ClusterState& s, Change* change);
  // Marks committed leases leased and sends them (back to pending if a send fails).
  void SendLeases(const std::vector<Lease>& leases);
  Coordinator* const c_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_PLAN_RUNNER_H_
