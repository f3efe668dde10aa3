// `miroir-ctl status`: leader, epoch, nodes (with their health), plans, pending
// recovery passes, workers, and the versions of the coordinator and workers.
#include <iostream>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"
#include "ctl/plan_format.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;

int RunStatus(const CtlContext& ctx) {
  miroir::v1::GetStatusRequest req;
  miroir::v1::GetStatusResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::GetStatus, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp));
    return kExitOk;
  }
  std::cout << "coordinator: " << ctx.coordinator << " (leader " << resp.leader() << ")\n"
            << "coordinator version: "
            << (resp.coordinator_version().empty() ? "unknown" : resp.coordinator_version()) << "\n"
            << "initialized: " << (resp.initialized() ? "yes" : "no") << "\n"
            << "epoch: " << resp.epoch() << "\n"
            << "anti-entropy: " << (resp.anti_entropy_enabled() ? "enabled" : "disabled") << "\n"
            << "indexes: " << (resp.indexes().empty() ? "-" : absl::StrJoin(resp.indexes(), ", "))
            << "\n"
            << "pending recovery passes: " << resp.pending_recovery_passes() << "\n";
  std::cout << "\nnodes:\n";
  // HEALTH: reachability by the last worker report; MEMORY: used / limit as the
  // store reported it ("-" unknown, e.g. no report yet or no maxmemory).
  Table nodes({"ID", "GROUP", "ADDRESS", "STORE", "STATUS", "HEALTH", "MEMORY"});
  auto mib = [](uint64_t b) { return absl::StrCat(b / (1024 * 1024), "MiB"); };
  std::map<std::string, bool> reachable;
  for (const auto& h : resp.health()) reachable[h.node()] = h.reachable();
  for (const auto& n : resp.nodes()) {
    auto r = reachable.find(n.id());
    std::string memory = "-";
    if (n.capacity_bytes() > 0) {
      memory = absl::StrCat(mib(n.used_bytes()), "/", mib(n.capacity_bytes()));
    } else if (n.used_bytes() > 0) {
      memory = absl::StrCat(mib(n.used_bytes()), "/-");
    }
    nodes.AddRow({n.id(), n.group(), n.address(), n.store(), NodeStatusName(n.status()),
                  r == reachable.end() ? "-" : (r->second ? "reachable" : "unreachable"), memory});
  }
  nodes.Print(std::cout);
  std::cout << "\nworkers:\n";
  Table workers({"ID", "ADDRESS", "VERSION", "ACKED_EPOCH", "INFLIGHT", "TASKS"});
  for (const auto& w : resp.workers()) {
    workers.AddRow({w.id(), w.address(), w.version().empty() ? "unknown" : w.version(),
                    absl::StrCat(w.acked_epoch()), absl::StrCat(w.inflight_writes()),
                    absl::StrCat(w.running_tasks())});
  }
  workers.Print(std::cout);
  std::cout << "\nplans:\n";
  Table plans({"ID", "KIND", "STATE", "MOVES", "DESCRIPTION"});
  for (const auto& p : resp.plans()) {
    plans.AddRow({absl::StrCat(p.id()), KindName(p.kind()), StateName(p.state()),
                  absl::StrCat(p.moves_size()), p.description()});
  }
  plans.Print(std::cout);
  return kExitOk;
}

}  // namespace

void AddStatusCommand(CLI::App* app, Action* action) {
  CLI::App* cmd = app->add_subcommand(
      "status", "Leader, epoch, nodes, plans, pending recovery passes, workers");
  cmd->callback([action] { *action = RunStatus; });
}

}  // namespace miroir::ctl
