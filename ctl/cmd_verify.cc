// `miroir-ctl verify --index I`: every shard's owners agree (count + digest); exit 1 if not.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;

int RunVerify(const std::string& index, const CtlContext& ctx) {
  miroir::v1::VerifyRequest req;
  req.set_index(index);
  miroir::v1::VerifyResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::Verify, req, &resp); !s.ok()) {
    return Fail(s);
  }
  std::vector<std::string> divergent;
  for (const auto& v : resp.shards()) {
    if (!v.consistent()) divergent.push_back(absl::StrCat(v.shard()));
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp));
  } else {
    Table t({"SHARD", "CONSISTENT", "NODE", "DOCUMENTS", "DIGEST"});
    for (const auto& v : resp.shards()) {
      // Consistent shards take one line; divergent ones list every owner.
      if (v.consistent()) {
        t.AddRow({absl::StrCat(v.shard()), "yes", absl::StrJoin(v.nodes(), ","),
                  v.documents().empty() ? "-" : absl::StrCat(v.documents(0)),
                  v.digests().empty() ? "-" : v.digests(0)});
        continue;
      }
      for (int i = 0; i < v.nodes_size(); ++i) {
        t.AddRow({absl::StrCat(v.shard()), "NO", v.nodes(i),
                  i < v.documents_size() ? absl::StrCat(v.documents(i)) : "-",
                  i < v.digests_size() ? v.digests(i) : "-"});
      }
    }
    t.Print(std::cout);
  }
  if (!divergent.empty()) {
    PrintError(absl::StrCat("index ", index, ": ", divergent.size(),
                            " divergent shard(s): ", absl::StrJoin(divergent, ", ")));
    return kExitFailed;
  }
  if (ctx.output == OutputFormat::kTable) {
    std::cout << "index " << index << ": all " << resp.shards_size() << " shards consistent\n";
  }
  return kExitOk;
}

}  // namespace

void AddVerifyCommand(CLI::App* app, Action* action) {
  auto index = std::make_shared<std::string>();
  CLI::App* cmd = app->add_subcommand(
      "verify", "Check every shard's owners agree (count + digest); exit 1 listing divergent ones");
  cmd->add_option("--index", *index, "Index name or alias")->required();
  cmd->callback([index, action] {
    *action = [index](const CtlContext& ctx) { return RunVerify(*index, ctx); };
  });
}

}  // namespace miroir::ctl
