// Catching an add-node plan's move in one state of DESIGN §6 long enough for a
// control-plane fault to land there: scenario 19 (the coordinator SIGKILLed and
// restarted) and issue 18's leader faults on etcd (SIGKILL, SIGSTOP) share it.
//
// The short states are stretched as in the abort tests: the joining node r9 and
// the old owner r0 sit behind proxies whose traffic is delayed (fences, copies
// and the workers' epoch acks are slow, nothing fails), `active` by the workers'
// test-only ack delay (nothing is in flight to drain when E3 is published: the
// shard's writes were held), cleanup by `retain_moved_shard`.
#ifndef MIROIR_TESTS_CHAOS_MOVE_STATE_HOLD_H_
#define MIROIR_TESTS_CHAOS_MOVE_STATE_HOLD_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "harness/fleet.h"
#include "harness/move_scenario.h"
#include "harness/tcp_proxy.h"

namespace miroir::testing {

// The fleet (one group of two, r0 proxied) and the config that let `at` be held.
// Call after so->fleet.coordinator_config has its base (it adds to it).
inline void PrepareMoveStateHold(miroir::v1::MoveState at, ScenarioOptions* so) {
  namespace pb = ::miroir::v1;
  so->fleet.group_sizes = {2};
  so->fleet.workers = 2;
  so->fleet.indexes = {{"products", 4, 2}};
  so->fleet.proxied_nodes = {"r0"};
  so->keys = 400;
  so->write_rate = 300;
  // A slowed catch-up converges to a threshold the writer's rate allows; the
  // cutover's budget covers the slowed fences and final delta.
  YAML::Node& c = so->fleet.coordinator_config;
  c["migration"]["catch_up_threshold"] = 100;
  c["migration"]["max_write_stall"] = "20s";
  c["migration"]["drain_timeout"] = "2s";
  if (at == pb::MOVE_CLEANUP) c["migration"]["retain_moved_shard"] = "4s";
  // `active` ends when every worker acked E3: the workers' ack delay stretches it.
  if (at == pb::MOVE_ACTIVE) so->fleet.worker_flags = {"--test-ack-delay-ms=1500"};
}

// Starts r9 (proxied), creates its add-node plan with the delays that stretch
// `at`, and waits until a move of the plan is in `at`; returns the plan as seen
// then. REQUIRES: the scenario was started with PrepareMoveStateHold(at).
inline absl::StatusOr<miroir::v1::Plan> PlanHeldIn(MoveScenario& sc, miroir::v1::MoveState at) {
  namespace pb = ::miroir::v1;
  Fleet& f = sc.fleet();
  auto addr = f.AddNodeProcess("r9", "g0", /*proxied=*/true);
  if (!addr.ok()) return addr.status();
  TcpProxy& joining = *f.node("r9").proxy;
  TcpProxy& old_owner = *f.node("r0").proxy;
  pb::CreatePlanRequest req = AddNodeRequest("r9", "g0", *addr);
  if (at == pb::MOVE_COPYING) req.set_throttle_docs_per_s(100);  // keeps the copy long
  // Delays apply to each direction and stay under the workers' 2 s store timeout
  // (a round trip of 2 x delay), so nothing fails, it only lasts. Writes into r9
  // delayed: prepare (fence + wipe r9) and the catch-up passes into r9 last; the
  // later states are reached through a slow catch-up.
  if (at == pb::MOVE_PREPARE) joining.Delay(absl::Milliseconds(700));
  if (at == pb::MOVE_DUAL_WRITE) joining.Delay(absl::Milliseconds(300));
  if (at >= pb::MOVE_CATCHING_UP && at <= pb::MOVE_ACTIVE) joining.Delay(absl::Milliseconds(400));
  auto plan = sc.Plan(req);
  if (!plan.ok()) return plan.status();
  // States that end when every worker acked an epoch (dual_write, paused) or that
  // fence r0 (paused): a worker acks once no write of an older epoch to the moved
  // shard is in flight, so writes slowed on their way to r0 keep the ack back.
  if (at == pb::MOVE_DUAL_WRITE) {
    if (auto s = f.WaitForMoveState(plan->id(), pb::MOVE_PREPARE); !s.ok()) return s.status();
    old_owner.Delay(absl::Milliseconds(600));
  }
  if (at >= pb::MOVE_PAUSED && at <= pb::MOVE_ACTIVE) {
    if (auto s = f.WaitForMoveState(plan->id(), pb::MOVE_CATCHING_UP); !s.ok()) return s.status();
    old_owner.Delay(absl::Milliseconds(600));
  }
  if (at == pb::MOVE_FINAL_DELTA) {
    // The final delta copies into r9: slowed more once writes pause.
    if (auto s = f.WaitForMoveState(plan->id(), pb::MOVE_PAUSED); !s.ok()) return s.status();
    joining.Delay(absl::Milliseconds(900));
  }
  return f.WaitForMoveState(plan->id(), at, absl::Seconds(120));
}

// The store traffic at full speed again.
inline void ReleaseMoveStateHold(Fleet& f) {
  f.node("r9").proxy->Pass();
  f.node("r0").proxy->Pass();
}

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_CHAOS_MOVE_STATE_HOLD_H_
