// The fleet file of `miroir-ctl cluster init` (DESIGN §11): groups, nodes and
// indexes, parsed and validated. Pure. Every error is INVALID_ARGUMENT naming
// the field ("groups[1].nodes[0].id: duplicate node id 'r0'").
#ifndef MIROIR_COORDINATOR_FLEET_SPEC_H_
#define MIROIR_COORDINATOR_FLEET_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace miroir::coordinator {

struct NodeSpec {
  std::string id;
  std::string address;
  std::string store = "redis";
};

struct GroupSpec {
  std::string id;
  std::vector<NodeSpec> nodes;
};

struct IndexSpec {
  std::string name;
  uint32_t shards = 0;
  uint32_t rf = 1;
};

struct FleetSpec {
  std::vector<GroupSpec> groups;
  std::vector<IndexSpec> indexes;
};

// Parses and validates; `source` names the file in errors.
absl::StatusOr<FleetSpec> ParseFleetSpec(const std::string& yaml_text, const std::string& source);

// Field validators shared with the API (field = the name used in the message).
// Node and group ids: [A-Za-z0-9_.-]{1,64}.
absl::Status ValidateId(const std::string& field, const std::string& id);
// Index and alias names: [a-z0-9_-]{1,64}.
absl::Status ValidateIndexName(const std::string& field, const std::string& name);
// HOST:PORT with a port in 1..65535.
absl::Status ValidateAddress(const std::string& field, const std::string& address);
// Known store adapter types ("redis").
absl::Status ValidateStore(const std::string& field, const std::string& store);
// S in 1..65536.
absl::Status ValidateShards(const std::string& field, uint64_t shards);

// Cross-checks of a whole spec (duplicates, RF ≤ every group's size).
absl::Status ValidateFleetSpec(const FleetSpec& spec);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_FLEET_SPEC_H_
