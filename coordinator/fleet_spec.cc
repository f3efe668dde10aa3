#include "coordinator/fleet_spec.h"

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/yaml_config.h"

namespace miroir::coordinator {
namespace {

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// Reads a scalar member as text; missing -> "".
absl::Status ScalarText(const std::string& source, const YAML::Node& map, const std::string& field,
                        const char* name, std::string* out) {
  YAML::Node n = map[name];
  if (!n || n.IsNull()) return absl::OkStatus();
  if (!n.IsScalar()) return YamlError(source, n, field, "must be a scalar");
  *out = n.as<std::string>();
  return absl::OkStatus();
}

absl::Status ScalarUint(const std::string& source, const YAML::Node& map, const std::string& field,
                        const char* name, uint64_t* out, bool* present) {
  YAML::Node n = map[name];
  *present = n && !n.IsNull();
  if (!*present) return absl::OkStatus();
  uint64_t v = 0;
  if (!n.IsScalar() || !absl::SimpleAtoi(n.as<std::string>(), &v)) {
    return YamlError(source, n, field, "must be a non-negative integer");
  }
  *out = v;
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateId(const std::string& field, const std::string& id) {
  if (id.empty()) return Invalid(field, "must not be empty");
  if (id.size() > 64)
    return Invalid(field, absl::StrCat("'", id, "' is longer than 64 characters"));
  for (char c : id) {
    if (!IsIdChar(c)) {
      return Invalid(field, absl::StrCat("'", id, "' is malformed (allowed: A-Z a-z 0-9 _ . -)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateIndexName(const std::string& field, const std::string& name) {
  if (name.empty()) return Invalid(field, "must not be empty");
  if (name.size() > 64) {
    return Invalid(field, absl::StrCat("'", name, "' is longer than 64 characters"));
  }
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
      return Invalid(field, absl::StrCat("'", name, "' is malformed (allowed: a-z 0-9 _ -)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAddress(const std::string& field, const std::string& address) {
  if (address.empty()) return Invalid(field, "must not be empty");
  size_t colon = address.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port == 0 || port > 65535) {
    return Invalid(field, absl::StrCat("'", address, "' is not HOST:PORT"));
  }
  return absl::OkStatus();
}

absl::Status ValidateStore(const std::string& field, const std::string& store) {
  if (store != "redis") {
    return Invalid(field, absl::StrCat("unknown store type '", store, "' (known: redis)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateShards(const std::string& field, uint64_t shards) {
  if (shards < 1 || shards > 65536) {
    return Invalid(field, absl::StrCat(shards, " is outside 1..65536"));
  }
  return absl::OkStatus();
}

absl::Status ValidateFleetSpec(const FleetSpec& spec) {
  if (spec.groups.empty()) return Invalid("groups", "at least one group is required");
  std::set<std::string> group_ids, node_ids;
  size_t smallest = SIZE_MAX;
  for (size_t g = 0; g < spec.groups.size(); ++g) {
    const GroupSpec& group = spec.groups[g];
    const std::string gf = absl::StrCat("groups[", g, "]");
    MIROIR_RETURN_IF_ERROR(ValidateId(gf + ".id", group.id));
    if (!group_ids.insert(group.id).second) {
      return Invalid(gf + ".id", absl::StrCat("duplicate group id '", group.id, "'"));
    }
    if (group.nodes.empty()) return Invalid(gf + ".nodes", "a group needs at least one node");
    smallest = std::min(smallest, group.nodes.size());
    for (size_t n = 0; n < group.nodes.size(); ++n) {
      const NodeSpec& node = group.nodes[n];
      const std::string nf = absl::StrCat(gf, ".nodes[", n, "]");
      MIROIR_RETURN_IF_ERROR(ValidateId(nf + ".id", node.id));
      if (!node_ids.insert(node.id).second) {
        return Invalid(nf + ".id", absl::StrCat("duplicate node id '", node.id, "'"));
      }
      MIROIR_RETURN_IF_ERROR(ValidateAddress(nf + ".address", node.address));
      MIROIR_RETURN_IF_ERROR(ValidateStore(nf + ".store", node.store));
    }
  }
  std::set<std::string> names;
  for (size_t i = 0; i < spec.indexes.size(); ++i) {
    const IndexSpec& index = spec.indexes[i];
    const std::string f = absl::StrCat("indexes[", i, "]");
    MIROIR_RETURN_IF_ERROR(ValidateIndexName(f + ".name", index.name));
    if (!names.insert(index.name).second) {
      return Invalid(f + ".name", absl::StrCat("duplicate index name '", index.name, "'"));
    }
    MIROIR_RETURN_IF_ERROR(ValidateShards(f + ".shards", index.shards));
    if (index.rf < 1) return Invalid(f + ".rf", "must be at least 1");
    if (index.rf > smallest) {
      return Invalid(f + ".rf",
                     absl::StrCat("rf ", index.rf, " is larger than the smallest group (", smallest,
                                  " nodes)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<FleetSpec> ParseFleetSpec(const std::string& yaml_text, const std::string& source) {
  auto doc = ParseYaml(yaml_text, source);
  if (!doc.ok()) return doc.status();
  const YAML::Node& root = *doc;
  if (!root || !root.IsMap()) return Invalid("groups", "the fleet file must be a map with groups");
  YamlReader r(source);
  MIROIR_RETURN_IF_ERROR(r.OnlyKeys(root, "", {"groups", "indexes"}));
  FleetSpec spec;
  YAML::Node groups = root["groups"];
  if (!groups || !groups.IsSequence()) {
    return Invalid("groups", "a list of groups is required");
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    const YAML::Node gn = groups[g];
    const std::string gf = absl::StrCat("groups[", g, "]");
    if (!gn.IsMap()) return YamlError(source, gn, gf, "must be a map with id and nodes");
    MIROIR_RETURN_IF_ERROR(r.OnlyKeys(gn, gf, {"id", "nodes"}));
    GroupSpec group;
    MIROIR_RETURN_IF_ERROR(ScalarText(source, gn, gf + ".id", "id", &group.id));
    YAML::Node nodes = gn["nodes"];
    if (!nodes || !nodes.IsSequence()) {
      return Invalid(gf + ".nodes", "a list of nodes is required");
    }
    for (size_t n = 0; n < nodes.size(); ++n) {
      const YAML::Node nn = nodes[n];
      const std::string nf = absl::StrCat(gf, ".nodes[", n, "]");
      if (!nn.IsMap()) return YamlError(source, nn, nf, "must be a map with id and address");
      MIROIR_RETURN_IF_ERROR(r.OnlyKeys(nn, nf, {"id", "address", "store"}));
      NodeSpec node;
      MIROIR_RETURN_IF_ERROR(ScalarText(source, nn, nf + ".id", "id", &node.id));
      MIROIR_RETURN_IF_ERROR(ScalarText(source, nn, nf + ".address", "address", &node.address));
      MIROIR_RETURN_IF_ERROR(ScalarText(source, nn, nf + ".store", "store", &node.store));
      group.nodes.push_back(std::move(node));
    }
    spec.groups.push_back(std::move(group));
  }
  if (YAML::Node indexes = root["indexes"]; indexes && !indexes.IsNull()) {
    if (!indexes.IsSequence()) return YamlError(source, indexes, "indexes", "must be a list");
    for (size_t i = 0; i < indexes.size(); ++i) {
      const YAML::Node in = indexes[i];
      const std::string f = absl::StrCat("indexes[", i, "]");
      if (!in.IsMap()) return YamlError(source, in, f, "must be a map with name, shards, rf");
      MIROIR_RETURN_IF_ERROR(r.OnlyKeys(in, f, {"name", "shards", "rf"}));
      IndexSpec index;
      MIROIR_RETURN_IF_ERROR(ScalarText(source, in, f + ".name", "name", &index.name));
      uint64_t shards = 0, rf = 1;
      bool present = false;
      MIROIR_RETURN_IF_ERROR(ScalarUint(source, in, f + ".shards", "shards", &shards, &present));
      if (!present) return Invalid(f + ".shards", "is required");
      MIROIR_RETURN_IF_ERROR(ValidateShards(f + ".shards", shards));
      MIROIR_RETURN_IF_ERROR(ScalarUint(source, in, f + ".rf", "rf", &rf, &present));
      if (rf > 1024) return Invalid(f + ".rf", absl::StrCat(rf, " is too large"));
      index.shards = static_cast<uint32_t>(shards);
      index.rf = static_cast<uint32_t>(rf);
      spec.indexes.push_back(std::move(index));
    }
  }
  MIROIR_RETURN_IF_ERROR(ValidateFleetSpec(spec));
  return spec;
}

}  // namespace miroir::coordinator
