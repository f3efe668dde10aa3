// Building blocks of the end-to-end move tests: a fleet with a writer that
// loads documents and keeps writing while a plan runs, plan requests for each
// kind, and the final check of the promise (with gtest assertions).
//
// Used from the test's main thread only.
#ifndef MIROIR_TESTS_HARNESS_MOVE_SCENARIO_H_
#define MIROIR_TESTS_HARNESS_MOVE_SCENARIO_H_

#include <memory>
#include <set>
#include <string>

#include "absl/time/time.h"
#include "harness/fleet.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"

namespace miroir::testing {

struct ScenarioOptions {
  FleetOptions fleet;
  int keys = 600;
  double write_rate = 400;  // writes/s during the plan
  double delete_fraction = 0.2;
  absl::Duration max_duration = absl::Seconds(50);
  uint64_t seed = 0;  // the writer's seed (0: random)
  // A batch unanswered this long has an unknown outcome (WriterOptions). A
  // scenario whose writes may be held across a failover gives them longer than
  // the pause deadline (max_write_stall).
  absl::Duration batch_timeout = absl::Seconds(10);
};

// A running fleet plus a writer that loaded every key and keeps writing.
class MoveScenario {
 public:
  // Starts the fleet and the writer and waits (bounded) until the load is
  // acknowledged.
  static absl::StatusOr<std::unique_ptr<MoveScenario>> Start(const std::string& dir,
                                                             ScenarioOptions options);
  Fleet& fleet() { return *fleet_; }
  TestWriter& writer() { return *writer_; }

  // Creates the plan; returns it (with its id).
  absl::StatusOr<miroir::v1::Plan> Plan(const miroir::v1::CreatePlanRequest& request);
  // Stops the writer, waits for quiescence and checks the promise on the nodes.
  // `skip_nodes`: nodes not read (killed for good).
  absl::StatusOr<CheckReport> StopAndCheck(const std::set<std::string>& skip_nodes = {});

 private:
  MoveScenario() = default;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<TestWriter> writer_;
};

miroir::v1::CreatePlanRequest AddNodeRequest(const std::string& id, const std::string& group,
                                             const std::string& address);
miroir::v1::CreatePlanRequest RemoveNodeRequest(const std::string& id);
miroir::v1::CreatePlanRequest AddGroupRequest(
    const std::string& group, const std::vector<std::pair<std::string, std::string>>& nodes);
miroir::v1::CreatePlanRequest RemoveGroupRequest(const std::string& group);
miroir::v1::CreatePlanRequest RestoreRequest(const std::string& failed_id);

// A schedule window `HH:MM-HH:MM` (UTC) that opens `from_now` ahead and lasts an
// hour: now is outside it, so a plan's moves copy and catch up, then wait in
// catching_up for it before pausing writes.
std::string WindowAhead(absl::Duration from_now);

// Marks a node failed through the API.
absl::Status MarkNodeFailed(Fleet& fleet, const std::string& id);
// Aborts a plan through the API.
absl::StatusOr<miroir::v1::Plan> AbortPlan(Fleet& fleet, uint64_t id);
// One line per move: "shard 3 g0 [r1]->[r4] DONE copied=120 stall=12ms".
std::string DescribePlan(const miroir::v1::Plan& plan);

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_MOVE_SCENARIO_H_
