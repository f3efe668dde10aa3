// CoordinatorLink: what the data path needs from the coordinator session: the
// lease, an immediate view refresh after a fence, and miss reports. The real
// implementation is CoordinatorSession; tests may implement it directly.
//
// Implementations are thread-safe.
#ifndef MIROIR_WORKER_COORDINATOR_LINK_H_
#define MIROIR_WORKER_COORDINATOR_LINK_H_

#include <cstdint>
#include <string>

namespace miroir {

class CoordinatorLink {
 public:
  virtual ~CoordinatorLink() = default;
  // True while the worker's lease is valid (writes are refused otherwise).
  virtual bool LeaseValid() const = 0;
  // Asks for a view with epoch >= min_epoch and applies it to the router
  // (GetView); returns after the attempt, whatever its outcome.
  virtual void RefreshView(uint64_t min_epoch) = 0;
  // Records that `node` missed a write to (index, generation, shard).
  virtual void ReportMiss(const std::string& node, const std::string& index, uint64_t generation,
                          uint32_t shard) = 0;
};

}  // namespace miroir

#endif  // MIROIR_WORKER_COORDINATOR_LINK_H_
