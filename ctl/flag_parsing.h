// Pure parsing and validation of miroir-ctl's structured flag values (no I/O),
// so every bad-input case is tested in-process as well as through the binary.
#ifndef MIROIR_CTL_FLAG_PARSING_H_
#define MIROIR_CTL_FLAG_PARSING_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/routing.h"
#include "miroir/v1/types.pb.h"

namespace miroir::ctl {

// --groups 'G:n1,n2;G2:m1' -> groups in the given order. INVALID_ARGUMENT naming
// --groups when malformed, on an empty group or node id, or a duplicate group or
// node id (node ids are unique across groups).
absl::StatusOr<std::vector<GroupNodes>> ParseGroupsFlag(std::string_view text);

// Validates `route` arguments: 1 <= shards <= 65536, rf >= 1 and no larger than
// any group, every key non-empty and at most 511 bytes. INVALID_ARGUMENT naming
// the flag or key.
absl::Status ValidateRouteArgs(uint32_t shards, uint32_t rf, const std::vector<GroupNodes>& groups,
                               const std::vector<std::string>& keys);

// --nodes 'ID=HOST:PORT,ID=HOST:PORT' -> nodes with store "redis". INVALID_ARGUMENT
// naming --nodes when malformed or an id repeats.
absl::StatusOr<std::vector<miroir::v1::Node>> ParseNodesFlag(std::string_view text);

}  // namespace miroir::ctl

#endif  // MIROIR_CTL_FLAG_PARSING_H_
