#include "harness/move_scenario.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/grpc_server.h"

namespace miroir::testing {

namespace pb = ::miroir::v1;

absl::StatusOr<std::unique_ptr<MoveScenario>> MoveScenario::Start(const std::string& dir,
                                                                  ScenarioOptions options) {
  std::unique_ptr<MoveScenario> sc(new MoveScenario());
  auto fleet = Fleet::Start(dir, options.fleet);
  if (!fleet.ok()) return fleet.status();
  sc->fleet_ = std::move(*fleet);
  std::string index = options.fleet.indexes.empty() ? "products" : options.fleet.indexes[0].name;
  WriterOptions wo = sc->fleet_->WriterOptionsFor(index);
  wo.keys = options.keys;
  wo.load_first = true;
  wo.delete_fraction = options.delete_fraction;
  wo.ops_per_second = options.write_rate;
  wo.max_duration = options.max_duration;
  wo.batch_timeout = options.batch_timeout;
  wo.streams = 4;
  wo.batch_size = 8;
  wo.seed = options.seed;
  sc->writer_ = std::make_unique<TestWriter>(wo);
  if (absl::Status s = sc->writer_->Start(); !s.ok()) return s;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (true) {
    WriterStats st = sc->writer_->stats();
    if (st.acked() >= static_cast<uint64_t>(options.keys)) break;
    if (absl::Now() > deadline || st.unknown > 0) {
      return absl::DeadlineExceededError(absl::StrCat("load not acknowledged: ", st.acked(), " of ",
                                                      options.keys, " acked, ", st.unknown,
                                                      " unknown"));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return sc;
}

absl::StatusOr<pb::Plan> MoveScenario::Plan(const pb::CreatePlanRequest& request) {
  return fleet_->CreatePlan(request);
}

absl::StatusOr<CheckReport> MoveScenario::StopAndCheck(const std::set<std::string>& skip_nodes) {
  writer_->Stop();
  writer_->Wait();
  CheckOptions co = fleet_->CheckOptionsFor(writer_->options().index);
  co.skip_nodes = skip_nodes;
  return CheckPromise(writer_->records(), co);
}

pb::CreatePlanRequest AddNodeRequest(const std::string& id, const std::string& group,
                                     const std::string& address) {
  pb::CreatePlanRequest r;
  r.set_kind(pb::PLAN_ADD_NODE);
  r.set_node_id(id);
  r.set_group(group);
  r.set_address(address);
  r.set_store("redis");
  return r;
}

std::string WindowAhead(absl::Duration from_now) {
  const absl::Time start = absl::Now() + from_now;
  return absl::StrCat(absl::FormatTime("%H:%M", start, absl::UTCTimeZone()), "-",
                      absl::FormatTime("%H:%M", start + absl::Hours(1), absl::UTCTimeZone()));
}

pb::CreatePlanRequest RemoveNodeRequest(const std::string& id) {
  pb::CreatePlanRequest r;
  r.set_kind(pb::PLAN_REMOVE_NODE);
  r.set_node_id(id);
  return r;
}

pb::CreatePlanRequest AddGroupRequest(
    const std::string& group, const std::vector<std::pair<std::string, std::string>>& nodes) {
  pb::CreatePlanRequest r;
  r.set_kind(pb::PLAN_ADD_GROUP);
  r.set_group(group);
  for (const auto& [id, address] : nodes) {
    pb::Node* n = r.add_nodes();
    n->set_id(id);
    n->set_group(group);
    n->set_address(address);
    n->set_store("redis");
  }
  return r;
}

pb::CreatePlanRequest RemoveGroupRequest(const std::string& group) {
  pb::CreatePlanRequest r;
  r.set_kind(pb::PLAN_REMOVE_GROUP);
  r.set_group(group);
  return r;
}

pb::CreatePlanRequest RestoreRequest(const std::string& failed_id) {
  pb::CreatePlanRequest r;
  r.set_kind(pb::PLAN_RESTORE);
  r.set_node_id(failed_id);
  return r;
}

absl::Status MarkNodeFailed(Fleet& fleet, const std::string& id) {
  pb::MarkNodeFailedRequest req;
  req.set_id(id);
  pb::MarkNodeFailedResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return FromGrpc(fleet.coord().MarkNodeFailed(&ctx, req, &resp));
}

absl::StatusOr<pb::Plan> AbortPlan(Fleet& fleet, uint64_t id) {
  pb::PlanIdRequest req;
  req.set_id(id);
  pb::GetPlanResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  absl::Status s = FromGrpc(fleet.coord().AbortPlan(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.plan();
}

std::string DescribePlan(const pb::Plan& plan) {
  std::string out = absl::StrCat("plan ", plan.id(), " ", pb::PlanState_Name(plan.state()));
  for (const auto& m : plan.moves()) {
    absl::StrAppend(&out, "\n  shard ", m.shard(), " ", m.group(), " [",
                    absl::StrJoin(m.old_owners(), ","), "]->[", absl::StrJoin(m.new_owners(), ","),
                    "] ", pb::MoveState_Name(m.state()), " copied=", m.documents_copied(),
                    " stall=", m.stall_ms(), "ms", m.message().empty() ? "" : " ", m.message());
  }
  return out;
}

}  // namespace miroir::testing
