// `miroir-ctl check`: the fleet check (like `kudu cluster ksck`). Prints every
// node as the workers last saw it and every finding; exits 1 when a finding is
// an error, 0 when the fleet is healthy (warnings alone do not fail it).
#include <iostream>

#include "absl/strings/str_cat.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;

std::string ConfigValue(const miroir::v1::NodeCheck& n, const std::string& key) {
  auto it = n.store_config().find(key);
  return it == n.store_config().end() ? "-" : it->second;
}

std::string Age(int64_t ms) {
  if (ms < 0) return "never";
  return absl::StrCat(ms / 1000, "s ago");
}

int RunCheck(const CtlContext& ctx) {
  miroir::v1::CheckClusterRequest req;
  miroir::v1::CheckClusterResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::CheckCluster, req, &resp); !s.ok()) {
    return Fail(s);
  }
  int errors = 0, warnings = 0;
  for (const auto& f : resp.findings()) (f.severity() == "error" ? errors : warnings)++;
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp));
    return resp.healthy() ? kExitOk : kExitFailed;
  }
  std::cout << "epoch " << resp.epoch() << ", " << resp.workers() << " live worker(s)\n\nnodes:\n";
  Table nodes({"NODE", "GROUP", "ADDRESS", "STATUS", "REACHABLE", "APPENDONLY", "APPENDFSYNC",
               "MAXMEMORY-POLICY", "REPORTED"});
  for (const auto& n : resp.nodes()) {
    nodes.AddRow({n.node(), n.group(), n.address(), n.status(), n.reachable(),
                  ConfigValue(n, "appendonly"), ConfigValue(n, "appendfsync"),
                  ConfigValue(n, "maxmemory-policy"), Age(n.report_age_ms())});
  }
  nodes.Print(std::cout);
  if (!resp.findings().empty()) {
    std::cout << "\nfindings:\n";
    Table findings({"SEVERITY", "CHECK", "SUBJECT", "MESSAGE"});
    for (const auto& f : resp.findings()) {
      findings.AddRow({f.severity(), f.check(), f.subject(), f.message()});
    }
    findings.Print(std::cout);
  }
  std::cout << "\n";
  if (resp.healthy()) {
    std::cout << "healthy";
    if (warnings > 0) std::cout << " (" << warnings << " warning(s))";
    std::cout << "\n";
    return kExitOk;
  }
  std::cout << "unhealthy: " << errors << " error(s), " << warnings << " warning(s)\n";
  PrintError(absl::StrCat("check found ", errors, " problem(s)"), "", kExitFailed);
  return kExitFailed;
}

}  // namespace

void AddCheckCommand(CLI::App* app, Action* action) {
  CLI::App* cmd = app->add_subcommand(
      "check",
      "Check the whole fleet: store nodes reachable with appendonly yes, appendfsync always, "
      "maxmemory-policy noeviction; workers on the current epoch; failed plans and reshards; "
      "pending recovery passes; failed nodes; leftovers. Exit 0 healthy, 1 problems found");
  cmd->callback([action] { *action = RunCheck; });
}

}  // namespace miroir::ctl
