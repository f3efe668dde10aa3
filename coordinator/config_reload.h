// The running coordinator configuration as keys (`miroir-ctl config show`) and
// what a reload may change live (SIGHUP, ReloadConfig). Pure: no I/O, no
// locking; the Coordinator applies the result between runner ticks.
//
// Live keys are the scalar tuning knobs the runners read at every tick (copy
// throttles and page sizes, catch-up and cutover limits, retries, retention,
// anti-entropy pacing). Everything else needs a restart: addresses and files,
// the worker lease and clock drift (the failover arithmetic of DESIGN §9a),
// the safety-gate settings (migration.skip_delta_pass, anti_entropy.enabled,
// validated at start), and the schedule windows (a running plan's window is
// changed with `plan update --schedule-window`).
#ifndef MIROIR_COORDINATOR_CONFIG_RELOAD_H_
#define MIROIR_COORDINATOR_CONFIG_RELOAD_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/config.h"

namespace miroir::coordinator {

struct ConfigKeyValue {
  std::string key;    // dotted YAML key, e.g. "migration.catch_up_max"
  std::string value;  // as YAML would write it
  bool live = false;  // a reload applies it without a restart
};

// Every YAML key of `config` with its value, in document order.
std::vector<ConfigKeyValue> ConfigEntries(const CoordinatorConfig& config);

struct ConfigKeyChange {
  std::string key, old_value, new_value;
};

struct ConfigReload {
  CoordinatorConfig config;                     // running, with the live keys from the file
  std::vector<ConfigKeyChange> applied;         // live keys that changed
  std::vector<ConfigKeyChange> restart_needed;  // other keys that differ, kept as running
};

// Copies every live key of `from` into `to` (nothing else is written).
void CopyLiveKeys(const CoordinatorConfig& from, CoordinatorConfig* to);

// What reloading `file` (parsed, with the process flags applied) into `running`
// does. INVALID_ARGUMENT, naming the key, when the result does not validate
// (ValidateCoordinatorConfig); the running config is then kept whole.
absl::StatusOr<ConfigReload> PlanConfigReload(const CoordinatorConfig& running,
                                              const CoordinatorConfig& file);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_CONFIG_RELOAD_H_
