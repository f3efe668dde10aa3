// `miroir-ctl config show|reload`: the coordinator's running configuration, and
// a reload of its --config file's live keys (as SIGHUP does).
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;

int RunShow(const CtlContext& ctx) {
  miroir::v1::GetConfigResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::GetConfig, miroir::v1::GetConfigRequest(),
                               &resp);
      !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp));
    return kExitOk;
  }
  std::cout << "source " << (resp.source().empty() ? "(defaults and flags)" : resp.source())
            << ", loaded "
            << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(resp.loaded_ms()),
                                absl::UTCTimeZone())
            << ", " << resp.reloads() << " reload(s)\n";
  Table t({"KEY", "VALUE", "LIVE"});
  for (const auto& e : resp.entries()) t.AddRow({e.key(), e.value(), e.live() ? "yes" : "no"});
  t.Print(std::cout);
  return kExitOk;
}

int RunReload(const CtlContext& ctx) {
  miroir::v1::ReloadConfigResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::ReloadConfig,
                               miroir::v1::ReloadConfigRequest(), &resp);
      !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp));
    return kExitOk;
  }
  std::cout << "reloaded " << resp.source() << ": " << resp.applied_size() << " applied, "
            << resp.restart_needed_size() << " need a restart\n";
  Table t({"KEY", "OLD", "NEW", "APPLIED"});
  for (const auto& c : resp.applied()) t.AddRow({c.key(), c.old_value(), c.new_value(), "yes"});
  for (const auto& c : resp.restart_needed()) {
    t.AddRow({c.key(), c.old_value(), c.new_value(), "no (restart)"});
  }
  if (t.size() > 0) t.Print(std::cout);
  return kExitOk;
}

}  // namespace

void AddConfigCommands(CLI::App* app, Action* action) {
  CLI::App* config = app->add_subcommand("config", "The coordinator's running configuration");
  config->require_subcommand(1);
  config->add_subcommand("show", "Every config key with its running value and whether it is live")
      ->callback([action] { *action = RunShow; });
  config
      ->add_subcommand("reload",
                       "Re-read the coordinator's --config file and apply its live keys (as "
                       "SIGHUP does); other changed keys are listed as needing a restart")
      ->callback([action] { *action = RunReload; });
}

}  // namespace miroir::ctl
