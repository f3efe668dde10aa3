#include "coordinator/anti_entropy_scheduler.h"

#include <algorithm>
#include <cctype>
#include <tuple>

namespace miroir::coordinator {

AeRoundPlan ChooseAeShards(const std::vector<AeIndexState>& indexes, uint32_t shards_per_pass) {
  struct Candidate {
    int64_t last_pass_ms;
    std::string index;
    uint32_t shard;
  };
  AeRoundPlan plan;
  std::vector<Candidate> candidates;
  for (const AeIndexState& idx : indexes) {
    for (const AeShardState& s : idx.shards) {
      if (idx.reshard_or_retention || s.move_active) {
        plan.skipped.push_back({idx.index, s.shard});
        continue;
      }
      candidates.push_back({s.last_pass_ms, idx.index, s.shard});
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.last_pass_ms, a.index, a.shard) < std::tie(b.last_pass_ms, b.index, b.shard);
  });
  const size_t n = std::min<size_t>(candidates.size(), shards_per_pass);
  for (size_t i = 0; i < n; ++i) plan.scan.push_back({candidates[i].index, candidates[i].shard});
  return plan;
}

int64_t AeGcBoundMs(int64_t now_ms, int64_t tombstone_grace_ms, int64_t max_clock_drift_ms,
                    bool auto_repair, bool shard_unstable) {
  if (!auto_repair || shard_unstable) return 0;
  const int64_t bound = now_ms - tombstone_grace_ms - max_clock_drift_ms;
  return bound > 0 ? bound : 0;
}

std::optional<int64_t> ParseAeSchedule(const std::string& schedule) {
  const std::string prefix = "every ";
  if (schedule.rfind(prefix, 0) != 0) return std::nullopt;
  std::string rest = schedule.substr(prefix.size());
  if (rest.size() < 2) return std::nullopt;
  const char unit = rest.back();
  rest.pop_back();
  if (rest.empty() || rest.size() > 9) return std::nullopt;
  int64_t value = 0;
  for (char c : rest) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value <= 0) return std::nullopt;
  switch (unit) {
    case 's':
      return value * 1000;
    case 'm':
      return value * 60 * 1000;
    case 'h':
      return value * 3600 * 1000;
    case 'd':
      return value * 86400 * 1000;
    default:
      return std::nullopt;
  }
}

std::string ValidateAeGrace(int64_t tombstone_grace_ms, int64_t schedule_interval_ms) {
  if (tombstone_grace_ms < schedule_interval_ms) {
    return "anti_entropy.tombstone_grace (" + std::to_string(tombstone_grace_ms) +
           " ms) is shorter than anti_entropy.schedule interval (" +
           std::to_string(schedule_interval_ms) + " ms)";
  }
  return "";
}

}  // namespace miroir::coordinator
