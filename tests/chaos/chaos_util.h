// Shared pieces of the chaos scenarios (issue 8): the seed (env
// MIROIR_CHAOS_SEED, default 1) and one result line per scenario appended to
// the file named by MIROIR_CHAOS_RESULTS (tab-separated), which
// tests/chaos/run_matrix.sh turns into docs/chaos_testing_report.md.
#ifndef MIROIR_TESTS_CHAOS_CHAOS_UTIL_H_
#define MIROIR_TESTS_CHAOS_CHAOS_UTIL_H_

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "harness/test_writer.h"

namespace miroir::testing {

inline uint64_t ChaosSeed() {
  const char* v = std::getenv("MIROIR_CHAOS_SEED");
  uint64_t seed = 0;
  if (v != nullptr && absl::SimpleAtoi(v, &seed) && seed != 0) return seed;
  return 1;
}

// scenario, configuration, seed, acknowledged, lost, resurrected, mismatched,
// unknown keys, longest write stall (ms), repaired by AE (the repair writes of
// the anti-entropy runs the coordinator lists at the check; "-" if unknown),
// stale reads (acknowledged deletes or older versions read back through
// DataPlane.Get by a scenario that reads; "-" for one that does not), failed
// client writes (WriterStats::failed: not acknowledged, whatever the cause).
// Integration tests that are data-safety scenarios (issue 16's) record too, so
// tests/chaos/run_matrix.sh runs them with every seed.
inline void RecordChaosResult(const std::string& scenario, const std::string& config,
                              const CheckReport& report, const WriterStats& stats,
                              int64_t stale_reads = -1) {
  const char* path = std::getenv("MIROIR_CHAOS_RESULTS");
  if (path == nullptr || *path == '\0') return;
  std::ofstream out(path, std::ios::app);
  out << scenario << '\t' << config << '\t' << ChaosSeed() << '\t' << report.acknowledged_writes
      << '\t' << report.lost << '\t' << report.resurrected << '\t' << report.mismatched << '\t'
      << report.keys_unknown << '\t'
      << (stats.max_batch_latency == absl::ZeroDuration()  // no batch measured
              ? std::string("-")
              : absl::StrCat(absl::ToInt64Milliseconds(stats.max_batch_latency)))
      << '\t' << (report.ae_repaired < 0 ? std::string("-") : absl::StrCat(report.ae_repaired))
      << '\t' << (stale_reads < 0 ? std::string("-") : absl::StrCat(stale_reads)) << '\t'
      << stats.failed() << '\n';
}

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_CHAOS_CHAOS_UTIL_H_
