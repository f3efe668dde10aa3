#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/build_info.h"
#include "common/duration.h"
#include "common/grpc_server.h"
#include "common/tls.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"

namespace miroir::ctl {

namespace {

void AppendHelp(const CLI::App& cmd, const std::string& path, std::string* out) {
  std::string help = cmd.get_formatter()->make_help(&cmd, path, CLI::AppFormatMode::Normal);
  // Trailing spaces are not part of what a reader sees (and docs strip them).
  std::string clean;
  for (absl::string_view line : absl::StrSplit(help, '\n')) {
    while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
    absl::StrAppend(&clean, line, "\n");
  }
  while (clean.size() >= 2 && clean[clean.size() - 1] == '\n' && clean[clean.size() - 2] == '\n') {
    clean.pop_back();
  }
  absl::StrAppend(out, "### ", path, "\n\n```text\n", clean, "```\n\n");
  for (const CLI::App* sub : cmd.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_group().empty()) continue;  // hidden
    AppendHelp(*sub, path + " " + sub->get_name(), out);
  }
}

}  // namespace

std::string HelpReference(const CLI::App& app) {
  std::string out;
  AppendHelp(app, app.get_name(), &out);
  return out;
}

int RunCtl(int argc, char** argv) {
  CLI::App app{"miroir-ctl: operator CLI of miroir (a gRPC client of miroir-coordinator)",
               "miroir-ctl"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the command
  app.footer(
      "Global flags (before or after the command): --coordinator HOST:PORT[,HOST:PORT...], "
      "--output table|json, --timeout DURATION, --tls-ca/--tls-cert/--tls-key FILE, "
      "--token-file FILE.\nExit codes: 0 done, 1 failed or refused, 2 usage or invalid input, "
      "3 unreachable (coordinator, worker or node did not answer in time).\n"
      "With --output json an error is one JSON line on stderr: "
      "{\"error\":{\"code\":...,\"message\":...,\"exit_code\":N}}.");

  std::string coordinator = "127.0.0.1:7400";
  std::string output = "table";
  std::string timeout = "10s";
  app.add_option("--coordinator", coordinator,
                 "Coordinator HOST:PORT, or a comma-separated list (the leader is found)")
      ->envname("MIROIR_COORDINATOR")
      ->capture_default_str();
  app.add_option("--output", output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  auto* timeout_opt =
      app.add_option("--timeout", timeout, "Deadline of each call, e.g. 500ms, 10s, 1m")
          ->capture_default_str();

  TlsFiles tls;
  std::string token_file;
  app.add_option("--tls-ca", tls.ca, "PEM CA that verifies the coordinator's certificate (TLS)")
      ->envname("MIROIR_TLS_CA");
  app.add_option("--tls-cert", tls.cert, "PEM client certificate for mTLS")
      ->envname("MIROIR_TLS_CERT");
  app.add_option("--tls-key", tls.key, "PEM private key of --tls-cert")->envname("MIROIR_TLS_KEY");
  app.add_option("--token-file", token_file,
                 "File holding a bearer token (sent as 'authorization: Bearer ...')")
      ->envname("MIROIR_TOKEN_FILE");

  app.set_version_flag("--version", VersionLine("miroir-ctl"),
                       "Print the version and git commit, then exit");

  Action action;
  AddRouteCommand(&app, &action);
  AddStatusCommand(&app, &action);
  AddClusterCommands(&app, &action);
  AddNodesCommands(&app, &action);
  AddIndexCommands(&app, &action);
  AddPlanCommands(&app, &action);
  AddCheckWindowCommand(&app, &action);
  AddVerifyCommand(&app, &action);
  AddAntiEntropyCommands(&app, &action);
  AddReshardCommands(&app, &action);
  AddCheckCommand(&app, &action);
  AddConfigCommands(&app, &action);
  AddBackupCommand(&app, &action);

  // Hidden: the command reference of docs/cli.md, generated from the help texts
  // (docs/gen-cli-reference.sh writes it; tests/ctl/help_test.cc compares).
  CLI::App* help_all = app.add_subcommand("help-all", "Print every command's --help as Markdown");
  help_all->group("");
  help_all->callback([&app, &action] {
    action = [&app](const CtlContext&) {
      std::cout << HelpReference(app);
      return kExitOk;
    };
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // The option may not be stored yet when parsing failed: look at argv.
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--output=json" ||
          (a == "--output" && i + 1 < argc && std::string(argv[i + 1]) == "json")) {
        SetErrorFormat(OutputFormat::kJson);
      }
    }
    // An unknown command reads as "a subcommand is required"; name the word instead.
    std::string what = e.what();
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
      for (const CLI::App* sub = &app; sub != nullptr;) {
        auto rest = sub->remaining();
        if (!rest.empty()) {
          what = "unknown command '" + rest.front() + "'";
          break;
        }
        auto chosen = sub->get_subcommands();
        sub = chosen.empty() ? nullptr : chosen.front();
      }
    }
    PrintError(what + " (see --help)", "INVALID_ARGUMENT", kExitUsage);
    return kExitUsage;
  }

  CtlContext ctx;
  ctx.output = output == "json" ? OutputFormat::kJson : OutputFormat::kTable;
  SetErrorFormat(ctx.output);
  auto d = ParseDuration(timeout);
  if (!d.ok())
    return Fail(absl::InvalidArgumentError("--timeout: " + std::string(d.status().message())));
  if (*d <= absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError("--timeout must be positive, got '" + timeout + "'"));
  }
  ctx.timeout = *d;
  ClientSecurity security{tls, "", {}};
  if (!token_file.empty()) {
    auto token = ReadTokenFile("--token-file", token_file);
    if (!token.ok()) return Fail(token.status());
    security.token = *token;
  }
  if (auto s = SetClientSecurity(security); !s.ok()) return Fail(s);
  ctx.timeout_set = timeout_opt->count() > 0;
  if (!action) {
    PrintError("no command given (see --help)", "INVALID_ARGUMENT", kExitUsage);
    return kExitUsage;
  }
  // Once per invocation: every command's stubs (Coordinator, AntiEntropy, Reshard)
  // then use the one address.
  ctx.coordinator = ResolveCoordinator(coordinator, ctx.timeout, &ctx.no_leader);
  return action(ctx);
}

}  // namespace miroir::ctl
