// `miroir-ctl route`: offline shard and owner lookup (DESIGN §3), no coordinator.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/routing.h"
#include "ctl/commands.h"
#include "ctl/flag_parsing.h"

namespace miroir::ctl {
namespace {

struct RouteOptions {
  uint32_t shards = 0;
  std::string groups;
  bool groups_given = false;  // an explicit empty --groups is malformed, not absent
  uint32_t rf = 1;
  std::vector<std::string> keys;
};

int RunRoute(const RouteOptions& o, const CtlContext& ctx) {
  std::vector<GroupNodes> groups;
  if (o.groups_given) {
    auto parsed = ParseGroupsFlag(o.groups);
    if (!parsed.ok()) return Fail(parsed.status());
    groups = *std::move(parsed);
  }
  if (auto s = ValidateRouteArgs(o.shards, o.rf, groups, o.keys); !s.ok()) return Fail(s);

  if (ctx.output == OutputFormat::kJson) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& key : o.keys) {
      const uint32_t shard = ShardForKey(key, o.shards);
      nlohmann::ordered_json entry = {{"key", key}, {"shard", shard}};
      if (!groups.empty()) {
        nlohmann::ordered_json owners = nlohmann::ordered_json::object();
        for (const auto& a : AssignShard(shard, groups, o.rf)) owners[a.group] = a.owners;
        entry["owners"] = owners;
      }
      out.push_back(entry);
    }
    PrintJson(out);
    return kExitOk;
  }
  std::vector<std::string> header = {"KEY", "SHARD"};
  for (const auto& g : groups) header.push_back(g.group);
  Table t(header);
  for (const auto& key : o.keys) {
    const uint32_t shard = ShardForKey(key, o.shards);
    std::vector<std::string> row = {key, absl::StrCat(shard)};
    for (const auto& a : AssignShard(shard, groups, o.rf)) row.push_back(JoinList(a.owners));
    t.AddRow(row);
  }
  t.Print(std::cout);
  return kExitOk;
}

}  // namespace

void AddRouteCommand(CLI::App* app, Action* action) {
  auto o = std::make_shared<RouteOptions>();
  CLI::App* cmd = app->add_subcommand(
      "route", "Print each key's shard and, with --groups, its owners in each group (offline)");
  cmd->add_option("--shards", o->shards, "S, the number of shards (1..65536)")->required();
  CLI::Option* groups =
      cmd->add_option("--groups", o->groups, "Replica groups: 'G:n1,n2,...;G2:m1,...'");
  cmd->add_option("--rf", o->rf, "Replicas per group")->capture_default_str();
  cmd->add_option("KEY", o->keys, "Primary keys")->required();
  cmd->callback([o, groups, action] {
    o->groups_given = groups->count() > 0;
    *action = [o](const CtlContext& ctx) { return RunRoute(*o, ctx); };
  });
}

}  // namespace miroir::ctl
