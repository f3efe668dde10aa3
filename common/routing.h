// Routing compatible bit-for-bit with the original miroir proxy (DESIGN §3).
//
// Pure functions, no I/O, safe from any thread.
#ifndef MIROIR_COMMON_ROUTING_H_
#define MIROIR_COMMON_ROUTING_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace miroir {

// shard_for_key(pk, S) = XXH64(bytes(pk) ++ [0xFF], seed 0) mod S.
// REQUIRES: shards > 0.
uint32_t ShardForKey(std::string_view pk, uint32_t shards);

// The raw 64-bit hash of a key (before the modulo); also used for AE buckets.
uint64_t KeyHash(std::string_view pk);

// score(shard, node) = XXH64(le32(shard) ++ bytes(node_id) ++ [0xFF], seed 0).
uint64_t Score(uint32_t shard, std::string_view node_id);

// The top `rf` nodes of `group_nodes` by Score, descending; ties by node id
// ascending. Returns fewer than rf when the group is smaller.
std::vector<std::string> Owners(uint32_t shard, const std::vector<std::string>& group_nodes,
                                uint32_t rf);

// A group's node list, as routing sees it.
struct GroupNodes {
  std::string group;
  std::vector<std::string> nodes;
};

// Owners of `shard` in every group, in group order.
struct GroupAssignment {
  std::string group;
  std::vector<std::string> owners;
};
std::vector<GroupAssignment> AssignShard(uint32_t shard, const std::vector<GroupNodes>& groups,
                                         uint32_t rf);

// write_targets(shard) = union over groups of owners(shard, group), group order.
std::vector<std::string> WriteTargets(uint32_t shard, const std::vector<GroupNodes>& groups,
                                      uint32_t rf);

// The rendezvous owners of every shard of one topology, computed once: a router
// looks write targets up in O(1) instead of hashing every node of every group per
// key (64 nodes x 2 groups is ~1 us of hashing). Immutable after construction;
// safe from any thread. Results equal WriteTargets/AssignShard exactly.
class OwnerTable {
 public:
  // REQUIRES: shards > 0.
  OwnerTable(uint32_t shards, const std::vector<GroupNodes>& groups, uint32_t rf);
  uint32_t shards() const { return shards_; }
  // REQUIRES: shard < shards(). Union over groups of the owners, group order.
  const std::vector<std::string>& WriteTargets(uint32_t shard) const { return targets_[shard]; }
  // ShardForKey + WriteTargets.
  const std::vector<std::string>& WriteTargetsForKey(std::string_view pk) const {
    return targets_[ShardForKey(pk, shards_)];
  }

 private:
  uint32_t shards_;
  std::vector<std::vector<std::string>> targets_;
};

// One shard replica set whose owners differ between two topologies, in one group.
struct ShardMove {
  uint32_t shard = 0;
  std::string group;
  std::vector<std::string> old_owners;  // rank order; empty if the group is new
  std::vector<std::string> new_owners;  // rank order; empty if the group is removed
};

// The move diff: for every shard and every group present in either topology,
// the (shard, group) pairs whose owner sets differ. Owner sets are compared as
// sets (a pure rank change is not a move). Ordered by shard, then group.
std::vector<ShardMove> DiffOwners(uint32_t shards, uint32_t rf,
                                  const std::vector<GroupNodes>& before,
                                  const std::vector<GroupNodes>& after);

}  // namespace miroir

#endif  // MIROIR_COMMON_ROUTING_H_
