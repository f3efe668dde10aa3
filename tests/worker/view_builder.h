// Builds ClusterViews by hand for the worker's tests: one index, one LIVE
// generation, every shard with the same owners / write set / acking set.
#ifndef MIROIR_TESTS_WORKER_VIEW_BUILDER_H_
#define MIROIR_TESTS_WORKER_VIEW_BUILDER_H_

#include <map>
#include <string>
#include <vector>

#include "miroir/v1/types.pb.h"

namespace miroir::testing {

using GroupMap = std::vector<std::pair<std::string, std::vector<std::string>>>;

inline void FillGroups(const GroupMap& groups,
                       google::protobuf::RepeatedPtrField<v1::GroupOwners>* out) {
  out->Clear();
  for (const auto& [g, nodes] : groups) {
    auto* go = out->Add();
    go->set_group(g);
    for (const auto& n : nodes) go->add_nodes(n);
  }
}

// `addresses`: node id -> HOST:PORT. Every shard routes to `owners` (write set
// and acking set the same) unless changed afterwards.
inline v1::ClusterView MakeView(uint64_t epoch, const std::map<std::string, std::string>& addresses,
                                const std::string& index, uint32_t shards, uint32_t rf,
                                const GroupMap& owners, uint64_t generation = 1) {
  v1::ClusterView v;
  v.set_epoch(epoch);
  for (const auto& [id, addr] : addresses) {
    auto* n = v.add_nodes();
    n->set_id(id);
    n->set_address(addr);
    n->set_store("redis");
  }
  auto* g = v.add_generations();
  g->set_index(index);
  g->set_generation(generation);
  g->set_shards(shards);
  g->set_rf(rf);
  g->set_role(v1::GENERATION_LIVE);
  for (uint32_t s = 0; s < shards; ++s) {
    auto* r = g->add_routes();
    r->set_shard(s);
    r->set_state(v1::SHARD_STABLE);
    FillGroups(owners, r->mutable_owners());
    FillGroups(owners, r->mutable_write_set());
    FillGroups(owners, r->mutable_acking_set());
    FillGroups(owners, r->mutable_read_set());
  }
  return v;
}

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_WORKER_VIEW_BUILDER_H_
