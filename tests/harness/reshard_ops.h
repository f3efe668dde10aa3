// Reshard operations for the multi-process tests (integration and chaos): the
// miroir.v1.Reshard service of the fleet's coordinator, bounded waits on a
// reshard's state, and a direct count of what a generation left on the nodes.
//
// Used from the test's main thread only.
#ifndef MIROIR_TESTS_HARNESS_RESHARD_OPS_H_
#define MIROIR_TESTS_HARNESS_RESHARD_OPS_H_

#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "harness/fleet.h"
#include "miroir/v1/reshard.grpc.pb.h"

namespace miroir::testing {

struct ReshardRequest {
  std::string index = "products";
  uint32_t new_shards = 0;
  uint64_t throttle = 0;  // docs/s (0: the config's)
  bool force = false;
  std::string window;  // "" = resharding.allowed_windows
};

// products → new_shards at `throttle` docs/s.
inline ReshardRequest ReshardTo(uint32_t new_shards, uint64_t throttle = 0) {
  ReshardRequest r;
  r.new_shards = new_shards;
  r.throttle = throttle;
  return r;
}

absl::StatusOr<miroir::v1::ReshardStartResponse> StartReshard(Fleet& fleet,
                                                              const ReshardRequest& request);
// "status", "abort", "rollback" or "complete" on the newest reshard of `index`.
absl::StatusOr<miroir::v1::ReshardStatusResponse> ReshardCall(
    Fleet& fleet, const std::string& verb, const std::string& index = "products");
// Polls until the reshard is in one of `states`. FAILED_PRECONDITION when it
// reaches a state in `bad` first, DEADLINE_EXCEEDED at `timeout` (messages name
// the state and its note).
absl::StatusOr<miroir::v1::ReshardRecord> WaitForReshardState(
    Fleet& fleet, const std::set<std::string>& states, absl::Duration timeout = absl::Seconds(120),
    const std::set<std::string>& bad = {"failed", "aborted"},
    const std::string& index = "products");
// Documents and tombstones of generation `gen` (shards 0..shards-1) on every node.
absl::StatusOr<uint64_t> EntriesOfGeneration(Fleet& fleet, const std::string& index, uint64_t gen,
                                             uint32_t shards);

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_RESHARD_OPS_H_
