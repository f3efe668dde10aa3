// ReshardRunner: the driver of every reshard through the phases of DESIGN §7
// (docs/resharding.md). Each tick it runs ReshardStepper::Step
// (coordinator/reshard_stepper.h: every decision, pure) inside one commit with at
// most one new epoch, logs what it returned and bumps the backfilled-documents
// counter. Entry actions are idempotent: after a restart the current state's
// action runs again from the persisted per-shard watermarks and task ids.
//
// Tick() runs on the coordinator's runner thread (between stepping plans and
// leasing tasks, so a task it creates is leased in the same tick); the operator
// calls (Start, Status, Abort, Rollback, Complete) from any thread.
#ifndef MIROIR_COORDINATOR_RESHARD_RUNNER_H_
#define MIROIR_COORDINATOR_RESHARD_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "miroir/v1/reshard.pb.h"

namespace miroir::coordinator {

class Coordinator;

class ReshardRunner {
 public:
  explicit ReshardRunner(Coordinator* c) : c_(c) {}

  void Tick();

  // Starts a reshard, or estimates it (dry_run). Codes: see proto/miroir/v1/reshard.proto.
  absl::StatusOr<v1::ReshardStartResponse> Start(const v1::ReshardStartRequest& req);
  // The newest reshard of an index (name or alias), with its events.
  absl::StatusOr<v1::ReshardStatusResponse> Status(const std::string& index);
  absl::StatusOr<v1::ReshardStatusResponse> Abort(const std::string& index);
  absl::StatusOr<v1::ReshardStatusResponse> Rollback(const std::string& index);
  absl::StatusOr<v1::ReshardStatusResponse> Complete(const std::string& index);
  // `reshard cutover --force`: the catch-up ends after the round in flight.
  absl::StatusOr<v1::ReshardStatusResponse> Cutover(const std::string& index, bool force);

  // Metrics: reshards not in a terminal state, the phase of the newest of them
  // (0 idle, 1 shadow, 2 backfill and catch-up, 3 verify, 4 swap, 5 cleanup), and
  // documents copied into shadows since the process started.
  uint64_t InProgress() const;
  int Phase() const;
  uint64_t DocumentsBackfilled() const { return backfilled_.load(); }

 private:
  // Runs `fn` on the newest reshard of `index` under a commit.
  using RecordFn = std::function<absl::Status(v1::ReshardRecord*, int64_t now)>;
  absl::StatusOr<v1::ReshardStatusResponse> Operate(const std::string& index, const RecordFn& fn);

  Coordinator* const c_;
  std::atomic<uint64_t> backfilled_{0};
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_RESHARD_RUNNER_H_
