// Every miroir-ctl command answers --help with exit 0 and its usage.
#include <gtest/gtest.h>

#include "common/build_info.h"


#include "tests/ctl/ctl_runner.h"

namespace miroir {
namespace {

using miroir::testing::RunCtl;

TEST(CtlHelp, EveryCommandHasHelp) {
  const std::vector<std::vector<std::string>> commands = {
      {},
      {"route"},
      {"status"},
      {"cluster"},
      {"cluster", "init"},
      {"nodes"},
      {"nodes", "list"},
      {"nodes", "fail"},
      {"nodes", "forget"},
      {"index"},
      {"index", "create"},
      {"index", "list"},
      {"index", "show"},
      {"plan"},
      {"plan", "add-node"},
      {"plan", "remove-node"},
      {"plan", "add-group"},
      {"plan", "remove-group"},
      {"plan", "restore"},
      {"plan", "list"},
      {"plan", "show"},
      {"plan", "watch"},
      {"plan", "pause"},
      {"plan", "resume"},
      {"plan", "abort"},
      {"plan", "update"},
      {"plan", "cutover"},
      {"plans"},
      {"plans", "pause-all"},
      {"plans", "resume-all"},
      {"config"},
      {"config", "show"},
      {"config", "reload"},
      {"backup"},
      {"check-window"},
      {"verify"},
      {"check"},
  };
  for (const auto& cmd : commands) {
    auto args = cmd;
    args.push_back("--help");
    auto r = RunCtl(args);
    std::string usage = "Usage: miroir-ctl";
    for (const auto& c : cmd) usage += " " + c;
    EXPECT_EQ(r.exit_code, 0) << usage << r.err;
    EXPECT_NE(r.out.find(usage), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Exit codes: 0 done, 1 failed or refused, 2 usage or invalid input, 3 "
                         "unreachable"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.err, "");
  }
}

TEST(CtlHelp, PlanCreatingVerbsShareTheCommonFlags) {
  for (const char* verb : {"add-node", "remove-node", "add-group", "remove-group", "restore"}) {
    auto r = RunCtl({"plan", verb, "--help"});
    ASSERT_EQ(r.exit_code, 0);
    for (const char* flag :
         {"--dry-run", "--force", "--throttle", "--schedule-window", "--skip-delta-pass"}) {
      EXPECT_NE(r.out.find(flag), std::string::npos) << verb << " lacks " << flag;
    }
  }
}

TEST(CtlUsage, MissingOrUnknownCommandsExitTwoWithOneLine) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {}, {"bogus"}, {"plan"}, {"plan", "bogus"}, {"index", "create", "--name", "x"},
           {"plan", "show"}, {"plan", "show", "notanumber"}, {"nodes", "fail"}, {"nodes", "forget"},
           {"plan", "add-node", "--id", "r9", "--group", "g0"}, {"--timeout", "soon", "status"},
           {"--timeout", "0s", "status"}, {"verify"}, {"cluster", "init"}}) {
    auto r = RunCtl(args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << r.err;
    EXPECT_EQ(r.ErrLines(), 1) << joined << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << joined << r.err;
  }
  auto unknown = RunCtl({"stauts"});
  EXPECT_NE(unknown.err.find("unknown command 'stauts'"), std::string::npos) << unknown.err;
}

TEST(CtlVersion, PrintsTheProjectVersionAndCommit) {
  auto r = RunCtl({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // "miroir-ctl 0.1.0 (commit 1a2b3c4d5e6f)", "-dirty" on a changed tree,
  // "unknown" outside a git checkout.
  // Checked by hand, not std::regex (GCC 12's <regex> trips -Wmaybe-uninitialized
  // in the sanitizer tree).
  EXPECT_EQ(r.out, miroir::VersionLine("miroir-ctl") + "\n");
  const std::string commit = miroir::GitCommit();
  EXPECT_TRUE(commit == "unknown" || commit.size() >= 7) << commit;
  EXPECT_EQ(std::string(miroir::ProjectVersion()).find_first_not_of("0123456789."),
            std::string::npos)
      << miroir::ProjectVersion();
}

}  // namespace
}  // namespace miroir
