#include "common/routing.h"

#define XXH_STATIC_LINKING_ONLY  // stack-allocated XXH64_state_t
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <utility>

namespace miroir {
namespace {

constexpr unsigned char kStringTerminator = 0xFF;  // how the original hashes a str

// One-shot XXH64 over `prefix ++ bytes ++ [0xFF]`, through a stack buffer when it
// fits (several times faster than the streaming state for short inputs); the
// streaming path gives the same hash for longer inputs.
template <size_t kPrefix>
uint64_t HashWithTerminator(const unsigned char (&prefix)[kPrefix], std::string_view bytes) {
  constexpr size_t kStack = 256;
  if (kPrefix + bytes.size() + 1 <= kStack) {
    unsigned char buf[kStack];
    std::memcpy(buf, prefix, kPrefix);
    std::memcpy(buf + kPrefix, bytes.data(), bytes.size());
    buf[kPrefix + bytes.size()] = kStringTerminator;
    return XXH64(buf, kPrefix + bytes.size() + 1, 0);
  }
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  XXH64_update(&state, prefix, kPrefix);
  XXH64_update(&state, bytes.data(), bytes.size());
  XXH64_update(&state, &kStringTerminator, 1);
  return XXH64_digest(&state);
}

}  // namespace

uint64_t KeyHash(std::string_view pk) {
  constexpr size_t kStack = 256;
  if (pk.size() + 1 <= kStack) {
    unsigned char buf[kStack];
    std::memcpy(buf, pk.data(), pk.size());
    buf[pk.size()] = kStringTerminator;
    return XXH64(buf, pk.size() + 1, 0);
  }
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  XXH64_update(&state, pk.data(), pk.size());
  XXH64_update(&state, &kStringTerminator, 1);
  return XXH64_digest(&state);
}

uint32_t ShardForKey(std::string_view pk, uint32_t shards) {
  return static_cast<uint32_t>(KeyHash(pk) % shards);
}

uint64_t Score(uint32_t shard, std::string_view node_id) {
  const unsigned char le[4] = {static_cast<unsigned char>(shard & 0xFF),
                               static_cast<unsigned char>((shard >> 8) & 0xFF),
                               static_cast<unsigned char>((shard >> 16) & 0xFF),
                               static_cast<unsigned char>((shard >> 24) & 0xFF)};
  return HashWithTerminator(le, node_id);
}

std::vector<std::string> Owners(uint32_t shard, const std::vector<std::string>& group_nodes,
                                uint32_t rf) {
  const size_t k = std::min<size_t>(rf, group_nodes.size());
  std::vector<std::string> out;
  if (k == 0) return out;
  // Ranking: score descending, then node id ascending.
  using Scored = std::pair<uint64_t, const std::string*>;
  auto better = [](const Scored& a, const Scored& b) {
    if (a.first != b.first) return a.first > b.first;
    return *a.second < *b.second;
  };
  constexpr size_t kSmall = 8;
  if (k <= kSmall) {
    // Top-k by insertion into a tiny sorted array: no allocation, one pass.
    Scored best[kSmall];
    size_t n = 0;
    for (const auto& node : group_nodes) {
      Scored c{Score(shard, node), &node};
      if (n == k && !better(c, best[k - 1])) continue;
      size_t i = n < k ? n++ : k - 1;
      while (i > 0 && better(c, best[i - 1])) {
        best[i] = best[i - 1];
        --i;
      }
      best[i] = c;
    }
    out.reserve(k);
    for (size_t i = 0; i < k; ++i) out.push_back(*best[i].second);
    return out;
  }
  std::vector<Scored> scored;
  scored.reserve(group_nodes.size());
  for (const auto& n : group_nodes) scored.emplace_back(Score(shard, n), &n);
  std::partial_sort(scored.begin(), scored.begin() + k, scored.end(), better);
  out.reserve(k);
  for (size_t i = 0; i < k; ++i) out.push_back(*scored[i].second);
  return out;
}

std::vector<GroupAssignment> AssignShard(uint32_t shard, const std::vector<GroupNodes>& groups,
                                         uint32_t rf) {
  std::vector<GroupAssignment> out;
  out.reserve(groups.size());
  for (const auto& g : groups) out.push_back({g.group, Owners(shard, g.nodes, rf)});
  return out;
}

std::vector<std::string> WriteTargets(uint32_t shard, const std::vector<GroupNodes>& groups,
                                      uint32_t rf) {
  std::vector<std::string> out;
  out.reserve(groups.size() * rf);
  for (const auto& g : groups) {
    auto owners = Owners(shard, g.nodes, rf);
    for (auto& o : owners) out.push_back(std::move(o));
  }
  return out;
}

OwnerTable::OwnerTable(uint32_t shards, const std::vector<GroupNodes>& groups, uint32_t rf)
    : shards_(shards) {
  targets_.reserve(shards);
  for (uint32_t s = 0; s < shards; ++s) targets_.push_back(miroir::WriteTargets(s, groups, rf));
}

std::vector<ShardMove> DiffOwners(uint32_t shards, uint32_t rf,
                                  const std::vector<GroupNodes>& before,
                                  const std::vector<GroupNodes>& after) {
  std::map<std::string, std::pair<const GroupNodes*, const GroupNodes*>> groups;
  for (const auto& g : before) groups[g.group].first = &g;
  for (const auto& g : after) groups[g.group].second = &g;
  std::vector<ShardMove> moves;
  for (uint32_t s = 0; s < shards; ++s) {
    for (const auto& [name, pair] : groups) {
      std::vector<std::string> o, n;
      if (pair.first) o = Owners(s, pair.first->nodes, rf);
      if (pair.second) n = Owners(s, pair.second->nodes, rf);
      std::set<std::string> os(o.begin(), o.end()), ns(n.begin(), n.end());
      if (os == ns) continue;
      moves.push_back({s, name, std::move(o), std::move(n)});
    }
  }
  return moves;
}

}  // namespace miroir
