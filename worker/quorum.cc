#include "worker/quorum.h"

namespace miroir {

uint32_t GroupQuorum(uint32_t rf) { return (rf == 0 ? 1 : rf) / 2 + 1; }

QuorumResult EvaluateQuorum(const google::protobuf::RepeatedPtrField<v1::GroupOwners>& acking_set,
                            uint32_t rf, const absl::flat_hash_set<std::string>& applied) {
  QuorumResult out;
  const uint32_t need = GroupQuorum(rf);
  for (const auto& g : acking_set) {
    if (g.nodes().empty()) continue;
    uint32_t got = 0;
    for (const auto& n : g.nodes()) got += applied.contains(n) ? 1 : 0;
    if (got >= need) {
      out.ok_groups.push_back(g.group());
    } else {
      out.degraded_groups.push_back(g.group());
    }
  }
  out.ok = !out.ok_groups.empty();
  return out;
}

}  // namespace miroir
