// Pure anti-entropy scheduling logic (issue 7, DESIGN §5 and §8): which shards a round
// scans, which it skips, and the tombstone GC bound a pass may use. No I/O; the driver
// that leases TASK_AE_PASS tasks is not written yet (see docs/anti-entropy.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace miroir::coordinator {

struct AeShardState {
  uint32_t shard = 0;
  bool move_active = false;  // any move on this shard not done/aborted
  int64_t last_pass_ms = 0;  // 0 = never scanned
};

struct AeIndexState {
  std::string index;
  bool reshard_or_retention = false;  // a SHADOW or RETAINED generation exists
  std::vector<AeShardState> shards;
};

struct AeChoice {
  std::string index;
  uint32_t shard = 0;
};

struct AeRoundPlan {
  std::vector<AeChoice> scan;     // at most shards_per_pass, oldest pass first
  std::vector<AeChoice> skipped;  // unstable shards, retried next round
};

// Chooses up to `shards_per_pass` stable shards, least recently scanned first (ties by
// index name, then shard number). Unstable shards (move active, or the index has a
// reshard active / in retention) are skipped, never reconciled partially.
AeRoundPlan ChooseAeShards(const std::vector<AeIndexState>& indexes, uint32_t shards_per_pass);

// DESIGN §5: purge_tombstones_before_ms = now - tombstone_grace - max_clock_drift on a
// repairing pass over a stable shard; 0 (purge nothing) when report-only or unstable.
int64_t AeGcBoundMs(int64_t now_ms, int64_t tombstone_grace_ms, int64_t max_clock_drift_ms,
                    bool auto_repair, bool shard_unstable);

// Parses "every 6h" / "every 30m" / "every 45s" into milliseconds; nullopt when malformed.
std::optional<int64_t> ParseAeSchedule(const std::string& schedule);

// Config gate: tombstone_grace must be at least the schedule interval. Returns an empty
// string when fine, else a one-line error naming both keys.
std::string ValidateAeGrace(int64_t tombstone_grace_ms, int64_t schedule_interval_ms);

}  // namespace miroir::coordinator
