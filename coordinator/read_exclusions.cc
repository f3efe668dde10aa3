#include "coordinator/read_exclusions.h"

#include <set>
#include <string>
#include <tuple>

namespace miroir::coordinator {

std::vector<v1::ReadExclusion> PendingReadExclusions(const std::map<uint64_t, TaskRecord>& tasks) {
  std::map<std::tuple<std::string, uint64_t, uint32_t>, std::string> keys;  // -> index
  for (const auto& [id, t] : tasks) {
    if (!IsRecoveryPass(t.task)) continue;
    for (const auto& target : t.task.targets()) {
      keys.emplace(std::make_tuple(target, t.task.generation(), t.task.shard()), t.task.index());
    }
  }
  std::vector<v1::ReadExclusion> out;
  out.reserve(keys.size());
  for (const auto& [k, index] : keys) {
    v1::ReadExclusion e;
    e.set_node(std::get<0>(k));
    e.set_index(index);
    e.set_generation(std::get<1>(k));
    e.set_shard(std::get<2>(k));
    out.push_back(std::move(e));
  }
  return out;
}

bool SameReadExclusions(const google::protobuf::RepeatedPtrField<v1::ReadExclusion>& a,
                        const std::vector<v1::ReadExclusion>& b) {
  if (static_cast<size_t>(a.size()) != b.size()) return false;
  for (size_t i = 0; i < b.size(); ++i) {
    const v1::ReadExclusion& x = a[static_cast<int>(i)];
    if (x.node() != b[i].node() || x.generation() != b[i].generation() ||
        x.shard() != b[i].shard()) {
      return false;
    }
  }
  return true;
}

}  // namespace miroir::coordinator
