// `miroir-ctl index create|list|show|alias set|alias remove`. The index is named
// `--index I` on every noun (`--name I` kept as an alias on create and show).
#include <algorithm>
#include <iostream>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/route_sets.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"
#include "ctl/plan_format.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;

struct CreateOptions {
  std::string name;
  uint32_t shards = 0;
  uint32_t rf = 0;
};

std::string DescribeIndex(const miroir::v1::Index& i) {
  std::string out = absl::StrCat(i.name(), ": shards ", i.shards(), ", rf ", i.rf(),
                                 ", live generation ", i.live_generation());
  if (!i.aliases().empty()) absl::StrAppend(&out, ", aliases ", absl::StrJoin(i.aliases(), ","));
  return out;
}

int RunCreate(const CreateOptions& o, const CtlContext& ctx) {
  miroir::v1::CreateIndexRequest req;
  req.set_name(o.name);
  req.set_shards(o.shards);
  req.set_rf(o.rf);
  miroir::v1::CreateIndexResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::CreateIndex, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp));
  } else {
    std::cout << "created " << DescribeIndex(resp.index()) << " at epoch " << resp.epoch() << "\n";
  }
  return kExitOk;
}

int RunList(const CtlContext& ctx) {
  miroir::v1::ListIndexesRequest req;
  miroir::v1::ListIndexesResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::ListIndexes, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp)["indexes"]);
    return kExitOk;
  }
  Table t({"NAME", "SHARDS", "RF", "LIVE_GENERATION", "GENERATIONS", "ALIASES"});
  for (const auto& i : resp.indexes()) {
    t.AddRow({i.name(), absl::StrCat(i.shards()), absl::StrCat(i.rf()),
              absl::StrCat(i.live_generation()), absl::StrCat(i.generations_size()),
              i.aliases().empty() ? "-" : absl::StrJoin(i.aliases(), ",")});
  }
  t.Print(std::cout);
  return kExitOk;
}

// Nodes of `set` in group `group` ("" when none).
std::vector<std::string> GroupMembers(
    const google::protobuf::RepeatedPtrField<miroir::v1::GroupOwners>& set,
    const std::string& group) {
  for (const auto& g : set) {
    if (g.group() == group) return {g.nodes().begin(), g.nodes().end()};
  }
  return {};
}

int RunShow(const std::string& name, const CtlContext& ctx) {
  miroir::v1::GetIndexRequest req;
  req.set_name(name);
  miroir::v1::GetIndexResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::GetIndex, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp));
    return kExitOk;
  }
  std::cout << DescribeIndex(resp.index()) << "; epoch " << resp.epoch() << "\n";
  for (const auto& gen : resp.routes()) {
    std::cout << "\ngeneration " << gen.generation() << " (" << RoleName(gen.role()) << "), shards "
              << gen.shards() << ", rf " << gen.rf() << "\n";
    std::vector<std::string> groups;
    for (const auto& r : gen.routes()) {
      for (const auto& g : r.owners()) {
        if (std::find(groups.begin(), groups.end(), g.group()) == groups.end()) {
          groups.push_back(g.group());
        }
      }
    }
    std::vector<std::string> header = {"SHARD", "STATE"};
    for (const auto& g : groups) header.push_back(g);
    header.push_back("ALSO_WRITTEN");
    Table t(header);
    for (const auto& r : gen.routes()) {
      std::vector<std::string> row = {absl::StrCat(r.shard()), ShardStateName(r.state())};
      std::vector<std::string> extra;
      for (const auto& g : groups) {
        auto owners = GroupMembers(r.owners(), g);
        row.push_back(owners.empty() ? "-" : JoinList(owners));
        std::set<std::string> own(owners.begin(), owners.end());
        for (const auto& n : GroupMembers(WriteSet(r), g)) {
          if (!own.count(n)) extra.push_back(n);
        }
      }
      row.push_back(extra.empty() ? "-" : JoinList(extra));
      t.AddRow(row);
    }
    t.Print(std::cout);
  }
  return kExitOk;
}

int RunAliasSet(const std::string& alias, const std::string& index, const CtlContext& ctx) {
  miroir::v1::SetAliasRequest req;
  req.set_alias(alias);
  req.set_index(index);
  miroir::v1::SetAliasResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::SetAlias, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson({{"alias", alias}, {"index", index}, {"epoch", resp.epoch()}});
  } else {
    std::cout << "alias " << alias << " -> " << index << " at epoch " << resp.epoch() << "\n";
  }
  return kExitOk;
}

int RunAliasRemove(const std::string& alias, const CtlContext& ctx) {
  miroir::v1::RemoveAliasRequest req;
  req.set_alias(alias);
  miroir::v1::SetAliasResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::RemoveAlias, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson({{"alias", alias}, {"removed", true}, {"epoch", resp.epoch()}});
  } else {
    std::cout << "alias " << alias << " removed at epoch " << resp.epoch() << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddIndexCommands(CLI::App* app, Action* action) {
  CLI::App* index = app->add_subcommand("index", "Indexes and their routing tables");
  index->require_subcommand(1);

  auto o = std::make_shared<CreateOptions>();
  CLI::App* create = index->add_subcommand("create", "Create an index on every group");
  create->add_option("--index,--name", o->name, "Index name, [a-z0-9_-]{1,64} (--name: alias)")
      ->required();
  create->add_option("--shards", o->shards, "S, 1..65536")->required();
  create->add_option("--rf", o->rf, "Replicas per group, at most the smallest group")->required();
  create->callback(
      [o, action] { *action = [o](const CtlContext& ctx) { return RunCreate(*o, ctx); }; });

  CLI::App* list = index->add_subcommand("list", "Every index");
  list->callback([action] { *action = RunList; });

  auto name = std::make_shared<std::string>();
  CLI::App* show = index->add_subcommand("show", "Shard -> owners per group, state, epoch");
  show->add_option("--index,--name", *name, "Index name or alias (--name: alias)")->required();
  show->callback(
      [name, action] { *action = [name](const CtlContext& ctx) { return RunShow(*name, ctx); }; });

  CLI::App* alias = index->add_subcommand("alias", "Other names of an index");
  alias->require_subcommand(1);
  auto alias_name = std::make_shared<std::string>();
  auto alias_index = std::make_shared<std::string>();
  CLI::App* set = alias->add_subcommand(
      "set", "Point an alias at an index (moved from the index it named before)");
  set->add_option("--alias", *alias_name, "Alias, [a-z0-9_-]{1,64}, not an index's name")
      ->required();
  set->add_option("--index", *alias_index, "Index name")->required();
  set->callback([alias_name, alias_index, action] {
    *action = [alias_name, alias_index](const CtlContext& ctx) {
      return RunAliasSet(*alias_name, *alias_index, ctx);
    };
  });
  CLI::App* remove = alias->add_subcommand("remove", "Remove an alias (the index keeps its name)");
  remove->add_option("--alias", *alias_name, "Alias")->required();
  remove->callback([alias_name, action] {
    *action = [alias_name](const CtlContext& ctx) { return RunAliasRemove(*alias_name, ctx); };
  });
}

}  // namespace miroir::ctl
