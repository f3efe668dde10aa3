// miroir-ctl's nouns (CLI.md), one file each. Every Add*Commands registers its
// subcommands on `app`; when one is chosen on the command line, its CLI11
// callback stores in *action the function to run once parsing is done and the
// global flags are resolved. Each action is a thin client: parse -> call -> print,
// returning the exit code. Main thread only.
#ifndef MIROIR_CTL_COMMANDS_H_
#define MIROIR_CTL_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "ctl/output.h"

namespace miroir::ctl {

using Action = std::function<int(const CtlContext&)>;

void AddRouteCommand(CLI::App* app, Action* action);         // cmd_route.cc
void AddStatusCommand(CLI::App* app, Action* action);        // cmd_status.cc
void AddClusterCommands(CLI::App* app, Action* action);      // cmd_cluster.cc
void AddNodesCommands(CLI::App* app, Action* action);        // cmd_nodes.cc
void AddIndexCommands(CLI::App* app, Action* action);        // cmd_index.cc
void AddPlanCommands(CLI::App* app, Action* action);         // cmd_plan.cc
void AddCheckWindowCommand(CLI::App* app, Action* action);   // cmd_window.cc
void AddVerifyCommand(CLI::App* app, Action* action);        // cmd_verify.cc
void AddAntiEntropyCommands(CLI::App* app, Action* action);  // cmd_anti_entropy.cc
void AddReshardCommands(CLI::App* app, Action* action);      // cmd_reshard.cc
void AddCheckCommand(CLI::App* app, Action* action);         // cmd_check.cc
void AddConfigCommands(CLI::App* app, Action* action);       // cmd_config.cc
void AddBackupCommand(CLI::App* app, Action* action);        // cmd_backup.cc

// Every command's --help (the app's, then each visible subcommand's, depth
// first), as Markdown: "### miroir-ctl plan show", then the text in a fence.
std::string HelpReference(const CLI::App& app);  // ctl_app.cc

// Builds the whole command line and runs the chosen command; returns the exit code.
int RunCtl(int argc, char** argv);  // ctl_app.cc

}  // namespace miroir::ctl

#endif  // MIROIR_CTL_COMMANDS_H_
