// `miroir-ctl nodes list|fail|forget`.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"
#include "ctl/plan_format.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;

int RunList(const CtlContext& ctx) {
  miroir::v1::ListNodesRequest req;
  miroir::v1::ListNodesResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::ListNodes, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp)["nodes"]);
    return kExitOk;
  }
  Table t({"ID", "GROUP", "ADDRESS", "STORE", "STATUS", "INCARNATION"});
  for (const auto& n : resp.nodes()) {
    t.AddRow({n.id(), n.group(), n.address(), n.store(), NodeStatusName(n.status()),
              n.incarnation().empty() ? "-" : n.incarnation()});
  }
  t.Print(std::cout);
  return kExitOk;
}

int RunFail(const std::string& id, const CtlContext& ctx) {
  miroir::v1::MarkNodeFailedRequest req;
  req.set_id(id);
  miroir::v1::MarkNodeFailedResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::MarkNodeFailed, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp));
  } else {
    std::cout << "node " << resp.node().id() << " marked " << NodeStatusName(resp.node().status())
              << " at epoch " << resp.epoch() << "; restore RF with: miroir-ctl plan restore --id "
              << resp.node().id() << "\n";
  }
  return kExitOk;
}

int RunForget(const std::string& id, const CtlContext& ctx) {
  miroir::v1::ForgetNodeRequest req;
  req.set_id(id);
  miroir::v1::ForgetNodeResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::ForgetNode, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp));
  } else {
    std::cout << "node " << resp.node().id() << " forgotten (" << resp.shards() << " shards, "
              << resp.shards_with_sync_point()
              << " with a sync point); possible loss: " << resp.possible_loss() << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddNodesCommands(CLI::App* app, Action* action) {
  CLI::App* nodes = app->add_subcommand("nodes", "Store nodes");
  nodes->require_subcommand(1);
  CLI::App* list = nodes->add_subcommand("list", "Every node with its group and status");
  list->callback([action] { *action = RunList; });
  auto id = std::make_shared<std::string>();
  CLI::App* fail = nodes->add_subcommand("fail", "Mark a node failed (then: plan restore)");
  fail->add_option("--id", *id, "Node id")->required();
  fail->callback(
      [id, action] { *action = [id](const CtlContext& ctx) { return RunFail(*id, ctx); }; });
  CLI::App* forget = nodes->add_subcommand(
      "forget", "Forget a failed node: release the tombstone purges it holds back");
  forget->add_option("--id", *id, "Node id")->required();
  forget->callback(
      [id, action] { *action = [id](const CtlContext& ctx) { return RunForget(*id, ctx); }; });
}

}  // namespace miroir::ctl
