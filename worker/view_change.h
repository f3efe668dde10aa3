// What a new routing view changes for writes already in flight: the shards
// whose route differs from the view the worker had (ShardKeyName form), or
// "everything" when more than shard routes changed (nodes, aliases, the set of
// generations or their roles). Pure; the session uses it for the per-shard drain
// of a routing ack (docs/task-protocol.md, routing_ack).
#ifndef MIROIR_WORKER_VIEW_CHANGE_H_
#define MIROIR_WORKER_VIEW_CHANGE_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "miroir/v1/types.pb.h"

namespace miroir {

// "index\x1fgeneration\x1fshard": how in-flight writes name the shards they touch.
std::string ShardKeyName(const std::string& index, uint64_t generation, uint32_t shard);

struct ViewChange {
  bool everything = false;
  absl::flat_hash_set<std::string> shards;  // when !everything
};

ViewChange DiffViews(const v1::ClusterView& before, const v1::ClusterView& after);

}  // namespace miroir

#endif  // MIROIR_WORKER_VIEW_CHANGE_H_
