// `miroir-ctl cluster init --file fleet.yaml`: bootstrap groups, nodes and indexes once.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;

int RunInit(const std::string& file, const CtlContext& ctx) {
  std::ifstream in(file);
  if (!in)
    return Fail(absl::InvalidArgumentError(absl::StrCat("--file: cannot read '", file, "'")));
  std::stringstream text;
  text << in.rdbuf();
  miroir::v1::InitClusterRequest req;
  req.set_fleet_yaml(text.str());
  req.set_source_name(file);
  miroir::v1::InitClusterResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::InitCluster, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson({{"initialized", true}, {"epoch", resp.epoch()}});
  } else {
    std::cout << "cluster initialized from " << file << " at epoch " << resp.epoch() << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddClusterCommands(CLI::App* app, Action* action) {
  CLI::App* cluster = app->add_subcommand("cluster", "Bootstrap the cluster");
  cluster->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  CLI::App* init = cluster->add_subcommand("init", "Bootstrap groups, nodes and indexes once");
  init->add_option("--file", *file, "Fleet YAML file (DESIGN §11)")->required();
  init->callback(
      [file, action] { *action = [file](const CtlContext& ctx) { return RunInit(*file, ctx); }; });
}

}  // namespace miroir::ctl
