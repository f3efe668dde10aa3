#include "ctl/flag_parsing.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace miroir::ctl {
namespace {

constexpr uint32_t kMaxShards = 65536;
constexpr size_t kMaxKeyBytes = 511;

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

absl::StatusOr<std::vector<GroupNodes>> ParseGroupsFlag(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--groups '", std::string(text), "': ", why, " (expected 'G:n1,n2;G2:m1')"));
  };
  if (absl::StripAsciiWhitespace(AbslView(text)).empty()) return bad("empty");
  std::vector<GroupNodes> groups;
  std::set<std::string> group_ids, node_ids;
  for (absl::string_view part : absl::StrSplit(AbslView(text), ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) return bad("empty group entry");
    const size_t colon = part.find(':');
    if (colon == absl::string_view::npos) return bad(absl::StrCat("'", part, "' has no ':'"));
    GroupNodes g;
    g.group = std::string(absl::StripAsciiWhitespace(part.substr(0, colon)));
    if (g.group.empty()) return bad(absl::StrCat("'", part, "' has an empty group id"));
    if (!group_ids.insert(g.group).second)
      return bad(absl::StrCat("duplicate group '", g.group, "'"));
    for (absl::string_view n : absl::StrSplit(part.substr(colon + 1), ',')) {
      n = absl::StripAsciiWhitespace(n);
      if (n.empty()) return bad(absl::StrCat("group '", g.group, "' has an empty node id"));
      if (n.find(':') != absl::string_view::npos) {
        return bad(absl::StrCat("node id '", n, "' contains ':'"));
      }
      if (!node_ids.insert(std::string(n)).second) {
        return bad(absl::StrCat("duplicate node id '", n, "'"));
      }
      g.nodes.emplace_back(n);
    }
    groups.push_back(std::move(g));
  }
  return groups;
}

absl::Status ValidateRouteArgs(uint32_t shards, uint32_t rf, const std::vector<GroupNodes>& groups,
                               const std::vector<std::string>& keys) {
  if (shards < 1 || shards > kMaxShards) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shards must be between 1 and ", kMaxShards, ", got ", shards));
  }
  if (rf < 1) return absl::InvalidArgumentError("--rf must be at least 1, got 0");
  for (const auto& g : groups) {
    if (rf > g.nodes.size()) {
      return absl::InvalidArgumentError(absl::StrCat("--rf ", rf, " is larger than group '",
                                                     g.group, "' (", g.nodes.size(), " nodes)"));
    }
  }
  if (keys.empty()) return absl::InvalidArgumentError("KEY: at least one key is required");
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("KEY ", i + 1, " is empty"));
    }
    if (keys[i].size() > kMaxKeyBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("KEY ", i + 1, " is ", keys[i].size(), " bytes, more than ", kMaxKeyBytes));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<miroir::v1::Node>> ParseNodesFlag(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("--nodes '", std::string(text), "': ", why,
                                                   " (expected 'ID=HOST:PORT,ID=HOST:PORT')"));
  };
  if (absl::StripAsciiWhitespace(AbslView(text)).empty()) return bad("empty");
  std::vector<miroir::v1::Node> nodes;
  std::set<std::string> ids;
  for (absl::string_view part : absl::StrSplit(AbslView(text), ',')) {
    part = absl::StripAsciiWhitespace(part);
    const size_t eq = part.find('=');
    if (eq == absl::string_view::npos) return bad(absl::StrCat("'", part, "' has no '='"));
    const std::string id(absl::StripAsciiWhitespace(part.substr(0, eq)));
    const std::string address(absl::StripAsciiWhitespace(part.substr(eq + 1)));
    if (id.empty()) return bad(absl::StrCat("'", part, "' has an empty id"));
    const size_t colon = address.rfind(':');
    if (address.empty() || colon == std::string::npos || colon == 0 ||
        colon + 1 == address.size()) {
      return bad(absl::StrCat("address of '", id, "' is not HOST:PORT"));
    }
    if (!ids.insert(id).second) return bad(absl::StrCat("duplicate node id '", id, "'"));
    miroir::v1::Node n;
    n.set_id(id);
    n.set_address(address);
    n.set_store("redis");
    nodes.push_back(std::move(n));
  }
  return nodes;
}

}  // namespace miroir::ctl
