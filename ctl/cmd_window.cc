// `miroir-ctl check-window [--schedule-window W]`: exit 0 inside, 1 outside.
#include <iostream>
#include <memory>

#include "absl/strings/str_join.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;

int RunCheckWindow(const std::string& window, const CtlContext& ctx) {
  miroir::v1::CheckWindowRequest req;
  req.set_schedule_window(window);
  miroir::v1::CheckWindowResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::CheckWindow, req, &resp); !s.ok()) {
    return Fail(s);
  }
  const std::string windows =
      resp.windows().empty() ? "any time (no window set)" : absl::StrJoin(resp.windows(), ", ");
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(
        {{"inside", resp.inside()},
         {"now_utc", resp.now_utc()},
         {"windows", std::vector<std::string>(resp.windows().begin(), resp.windows().end())}});
  } else {
    std::cout << "now " << resp.now_utc() << " UTC; windows: " << windows << "; "
              << (resp.inside() ? "inside" : "outside") << "\n";
  }
  return resp.inside() ? kExitOk : kExitFailed;
}

}  // namespace

void AddCheckWindowCommand(CLI::App* app, Action* action) {
  auto window = std::make_shared<std::string>();
  CLI::App* cmd = app->add_subcommand(
      "check-window", "Whether now is inside a schedule window: exit 0 inside, 1 outside");
  cmd->add_option("--schedule-window", *window,
                  "Window name or HH:MM-HH:MM UTC (default: migration.allowed_windows)");
  cmd->callback([window, action] {
    *action = [window](const CtlContext& ctx) { return RunCheckWindow(*window, ctx); };
  });
}

}  // namespace miroir::ctl
