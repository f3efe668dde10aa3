#include "worker/view_change.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace miroir {
namespace {

bool SameMessage(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return a.SerializeAsString() == b.SerializeAsString();  // no maps inside: deterministic
}

// Everything about a generation except its routes (keep in step with
// GenerationRoute in types.proto).
bool SameHeader(const v1::GenerationRoute& a, const v1::GenerationRoute& b) {
  return a.index() == b.index() && a.generation() == b.generation() && a.shards() == b.shards() &&
         a.rf() == b.rf() && a.role() == b.role() && a.routes_size() == b.routes_size();
}

}  // namespace

std::string ShardKeyName(const std::string& index, uint64_t generation, uint32_t shard) {
  return absl::StrCat(index, "\x1f", generation, "\x1f", shard);
}

ViewChange DiffViews(const v1::ClusterView& before, const v1::ClusterView& after) {
  ViewChange out;
  const auto everything = [&out] {
    out.everything = true;
    out.shards.clear();
    return out;
  };
  if (before.epoch() == 0) return everything();  // no view before: nothing to compare
  if (before.nodes_size() != after.nodes_size()) return everything();
  for (int i = 0; i < before.nodes_size(); ++i) {
    if (!SameMessage(before.nodes(i), after.nodes(i))) return everything();
  }
  if (std::map<std::string, std::string>(before.aliases().begin(), before.aliases().end()) !=
      std::map<std::string, std::string>(after.aliases().begin(), after.aliases().end())) {
    return everything();
  }
  if (before.generations_size() != after.generations_size()) return everything();
  for (int i = 0; i < before.generations_size(); ++i) {
    const v1::GenerationRoute& b = before.generations(i);
    const v1::GenerationRoute& a = after.generations(i);
    if (!SameHeader(b, a)) return everything();
    for (int s = 0; s < b.routes_size(); ++s) {
      if (!SameMessage(b.routes(s), a.routes(s))) {
        out.shards.insert(ShardKeyName(a.index(), a.generation(), a.routes(s).shard()));
      }
    }
  }
  return out;
}

}  // namespace miroir
