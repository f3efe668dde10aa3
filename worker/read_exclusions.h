// ReadExclusions: the (node, shard)s this worker's reads skip because a recovery
// pass for them is pending (DESIGN §4 "Reads"). Two sources:
//  - the coordinator's list (WorkerControl `ReadExclusions`), versioned outside
//    the routing epoch so a miss never costs an epoch; only a newer version of
//    the same coordinator process replaces it, or any list of another process
//    (`run`: a restarted coordinator counts versions from the start);
//  - the misses this worker reported itself, excluded at once (before the write
//    is acknowledged) and kept until the coordinator confirms it processed the
//    report that carried them (`misses_through`): the list it sends with that
//    confirmation, or a newer one, accounts for them.
// No I/O. Thread-safe.
#ifndef MIROIR_WORKER_READ_EXCLUSIONS_H_
#define MIROIR_WORKER_READ_EXCLUSIONS_H_

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "miroir/v1/worker_control.pb.h"

namespace miroir {

class ReadExclusions {
 public:
  // Applies `list` when its version is newer than the one held or it comes from
  // another coordinator process (`run`: versions count anew in each, so a
  // restarted coordinator's first list replaces the held one whatever its
  // version; only one runs on a data directory at a time); then forgets the own
  // misses of every report up to `list.misses_through()` (the held list is then
  // this one or a later one of the same process, which reflects those reports).
  // Returns whether the entries were replaced.
  bool Apply(const v1::ReadExclusions& list);
  // A miss this worker is about to report: excluded from now on. A report that
  // fails goes out again under a later seq (the session's miss queue), and that
  // report's confirmation ends it.
  void AddOwnMiss(const std::string& node, uint64_t generation, uint32_t shard);
  // Every own miss not yet in a report goes out in report `seq` (> 0, increasing).
  // REQUIRES: the caller serialises this with AddOwnMiss and builds the report
  // from the same misses (CoordinatorSession holds its lock across both).
  void ReportSent(uint64_t seq);
  // Whether reads of (generation, shard) skip `node`.
  bool Excluded(const std::string& node, uint64_t generation, uint32_t shard) const;

  uint64_t version() const;
  // Entries of the coordinator's list / own misses held (metrics, tests).
  size_t listed() const;
  size_t own() const;

 private:
  using Key = std::tuple<std::string, uint64_t, uint32_t>;  // node, generation, shard
  mutable absl::Mutex mu_;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t run_ ABSL_GUARDED_BY(mu_) = 0;  // coordinator process of the held list
  absl::flat_hash_set<Key> listed_ ABSL_GUARDED_BY(mu_);
  // -> seq of the report that carried it (0: not sent yet)
  absl::flat_hash_map<Key, uint64_t> own_ ABSL_GUARDED_BY(mu_);
};

}  // namespace miroir

#endif  // MIROIR_WORKER_READ_EXCLUSIONS_H_
