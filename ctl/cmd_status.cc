// `miroir-ctl status`: leader, epoch, nodes, plans, pending recovery passes, workers.
#include <iostream>
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
            << "initialized: " << (resp.initialized() ? "yes" : "no") << "\n"
            << "epoch: " << resp.epoch() << "\n"
            << "anti-entropy: " << (resp.anti_entropy_enabled() ? "enabled" : "disabled") << "\n"
            << "indexes: "
            << (resp.indexes().empty() ? "-" : absl::StrJoin(resp.indexes(), ", ")) << "\n"
            << "pending recovery passes: " << resp.pending_recovery_passes() << "\n";
  std::cout << "\nnodes:\n";
  Table nodes({"ID", "GROUP", "ADDRESS", "STORE", "STATUS"});
  for (const auto& n : resp.nodes()) {
    nodes.AddRow({n.id(), n.group(), n.address(), n.store(), NodeStatusName(n.status())});
  }
  nodes.Print(std::cout);
  std::cout << "\nworkers:\n";
  Table workers({"ID", "ADDRESS", "ACKED_EPOCH", "INFLIGHT", "TASKS"});
  for (const auto& w : resp.workers()) {
    workers.AddRow({w.id(), w.address(), absl::StrCat(w.acked_epoch()),
                    absl::StrCat(w.inflight_writes()), absl::StrCat(w.running_tasks())});
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
