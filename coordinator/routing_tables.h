// Routing tables (DESIGN §2, §6): building a generation's table with owners
// stored explicitly, and deriving each shard's write set, acking set and state
// from its stored owners, the moves in flight on it and the failed nodes.
// Pure functions, no I/O, safe from any thread.
#ifndef MIROIR_COORDINATOR_ROUTING_TABLES_H_
#define MIROIR_COORDINATOR_ROUTING_TABLES_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/routing.h"
#include "miroir/v1/types.pb.h"

namespace miroir::coordinator {

namespace v1 = ::miroir::v1;

// A fresh table: owners by rendezvous within each group, every shard stable.
v1::GenerationRoute BuildInitialRoute(const std::string& index, uint64_t generation,
                                      uint32_t shards, uint32_t rf,
                                      const std::vector<GroupNodes>& groups);

// The stored owners of `group` in `route` (empty when the group holds none).
std::vector<std::string> StoredOwners(const v1::ShardRoute& route, const std::string& group);

// Replaces the stored owners of `group` (empty removes the group's entry).
void SetStoredOwners(v1::ShardRoute* route, const std::string& group,
                     const std::vector<std::string>& owners,
                     const std::vector<std::string>& group_order);

// Whether a move in `state` makes its shard dual-written / paused.
bool IsDualWriteState(v1::MoveState state);
bool IsPausedState(v1::MoveState state);
// Whether the move's joining nodes may still lack the shard's data (the move has
// not reached `active`, or failed or aborts before it): they are not read from
// (DESIGN §4 "Reads").
bool StillJoining(const v1::Move& move);

// Recomputes write_set, acking_set, state and pause deadline of `route` from its
// stored owners and `moves` (the moves on this shard not yet ended; each at its
// current state). Failed nodes leave the write, acking and read sets (they stay
// owners until a restore replaces them); in a move whose old owners include a
// failed node, the joining nodes count toward acks in its place. The read set is
// the owners minus failed nodes and minus the joining nodes of every move still
// copying into them (StillJoining): a rejoining node, an owner all along.
// `pause_deadline_ms` is used when a move pauses the shard.
void RecomputeShardRoute(v1::ShardRoute* route, const std::vector<const v1::Move*>& moves,
                         const std::set<std::string>& failed,
                         const std::vector<std::string>& group_order, int64_t pause_deadline_ms);

// Sets the read set of `route` (explicitly, whatever sets_are_owners says) from
// its stored owners: minus `failed` and minus the joining nodes of every move in
// `moves` that is StillJoining.
void SetReadSet(v1::ShardRoute* route, const std::vector<const v1::Move*>& moves,
                const std::set<std::string>& failed, const std::vector<std::string>& group_order);

// Quorum of a group of rf owners: floor(rf/2)+1.
inline uint32_t WriteQuorum(uint32_t rf) { return rf / 2 + 1; }
// Old owners a move must read from: rf - q + 1.
inline uint32_t MinSources(uint32_t rf) { return rf - WriteQuorum(rf) + 1; }

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_ROUTING_TABLES_H_
