// Rendering of plans, moves and enum values for miroir-ctl: the JSON shapes of
// CLI.md, human tables, and `plan watch` progress lines. Pure functions.
#ifndef MIROIR_CTL_PLAN_FORMAT_H_
#define MIROIR_CTL_PLAN_FORMAT_H_

#include <string>

#include "ctl/output.h"
#include "miroir/v1/coordinator.pb.h"
#include "miroir/v1/types.pb.h"
#include "nlohmann/json.hpp"

namespace miroir::ctl {

// Lower-case enum names without their prefix: PLAN_ADD_NODE -> "add_node",
// MOVE_CATCHING_UP -> "catching_up", NODE_ACTIVE -> "active".
std::string KindName(miroir::v1::PlanKind k);
std::string StateName(miroir::v1::PlanState s);
std::string MoveStateName(miroir::v1::MoveState s);
std::string NodeStatusName(miroir::v1::NodeStatus s);
std::string ShardStateName(miroir::v1::ShardState s);
std::string RoleName(miroir::v1::GenerationRole r);

// True for done, failed and aborted.
bool PlanEnded(miroir::v1::PlanState s);

// The dry-run shape of CLI.md exactly:
// {"kind":..,"moves":[{"index","shard","group","old_owners","new_owners",
//  "est_documents","est_bytes"}],"est_duration_s":..,"warnings":[..]}
nlohmann::ordered_json DryRunJson(const miroir::v1::Plan& plan);
// The same shape plus every field of the plan (id, state, description, node_id,
// group, created_ms, ended_ms, gates) and per move its id, state, state_since_ms,
// task_id, sources, progress, stall_ms and stall_retries. Ids are numbers.
nlohmann::ordered_json PlanJson(const miroir::v1::Plan& plan);

// A plan's tasks (GetPlanResponse.tasks): what each move waits for.
nlohmann::ordered_json TasksJson(
    const google::protobuf::RepeatedPtrField<miroir::v1::PlanTask>& tasks);
// TASK MOVE SHARD KIND STATE WORKER ATTEMPTS FAILURES LAST_ERROR.
void PrintTasksTable(const google::protobuf::RepeatedPtrField<miroir::v1::PlanTask>& tasks,
                     std::ostream& out);

// "plan 7 add_node running: add node r4 to g0" then one row per move.
void PrintPlanTable(const miroir::v1::Plan& plan, std::ostream& out);

// One `plan watch` line for a running move, e.g.
// "products/3 g0 copying [########------------] 1234/5000 docs 250/s ETA 15s".
// `rate` is documents per second (0 unknown); the total is est_documents (0 unknown).
std::string ProgressLine(const miroir::v1::Move& move, double rate, int bar_width = 20);

// One line for a state change: "plan 7 move 12 (products/3 g0): copying -> catching_up (why)".
std::string EventLine(const miroir::v1::Event& e, const miroir::v1::Plan& plan);

// Whether a move is between its first and last state (shown with a bar).
bool MoveRunning(miroir::v1::MoveState s);

}  // namespace miroir::ctl

#endif  // MIROIR_CTL_PLAN_FORMAT_H_
