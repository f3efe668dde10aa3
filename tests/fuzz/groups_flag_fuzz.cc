// libFuzzer target: miroir-ctl's --groups 'G:n1,n2;G2:m1' (and --nodes, parsed
// the same way). Accepted groups have non-empty ids, no duplicate group or node
// id, and no node id containing ':'.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "ctl/flag_parsing.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto groups = miroir::ctl::ParseGroupsFlag(text);
  if (groups.ok()) {
    MIROIR_FUZZ_CHECK(!groups->empty(), "at least one group");
    std::set<std::string> group_ids, node_ids;
    for (const auto& g : *groups) {
      MIROIR_FUZZ_CHECK(!g.group.empty() && group_ids.insert(g.group).second,
                        "group ids are non-empty and unique");
      MIROIR_FUZZ_CHECK(!g.nodes.empty(), "a group has a node");
      for (const auto& n : g.nodes) {
        MIROIR_FUZZ_CHECK(!n.empty() && n.find(':') == std::string::npos,
                          "node ids are non-empty without ':'");
        MIROIR_FUZZ_CHECK(node_ids.insert(n).second, "node ids are unique across groups");
      }
    }
    (void)miroir::ctl::ValidateRouteArgs(8, 1, *groups, {"k"});
  } else {
    MIROIR_FUZZ_CHECK(groups.status().code() == absl::StatusCode::kInvalidArgument,
                      "a --groups error is INVALID_ARGUMENT");
    MIROIR_FUZZ_CHECK(groups.status().message().find("--groups") != std::string_view::npos,
                      "a --groups error names the flag");
  }
  auto nodes = miroir::ctl::ParseNodesFlag(text);
  if (nodes.ok()) {
    std::set<std::string> ids;
    for (const auto& n : *nodes) {
      MIROIR_FUZZ_CHECK(!n.id().empty() && ids.insert(n.id()).second, "node ids are unique");
    }
  }
  return 0;
}
