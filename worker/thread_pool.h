// ThreadPool: a fixed set of threads running submitted closures (the per-node
// fan-out of a write batch, tasks). Thread-safe; Submit from any thread.
#ifndef MIROIR_WORKER_THREAD_POOL_H_
#define MIROIR_WORKER_THREAD_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace miroir {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  // Runs what was submitted, then joins.
  ~ThreadPool();
  void Submit(std::function<void()> fn);

 private:
  void Loop();
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace miroir

#endif  // MIROIR_WORKER_THREAD_POOL_H_
