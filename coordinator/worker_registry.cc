#include "coordinator/worker_registry.h"

namespace miroir::coordinator {

void Outbox::Push(v1::CoordinatorMessage msg) {
  absl::MutexLock l(&mu_);
  if (!closed_) queue_.push_back(std::move(msg));
}

std::optional<v1::CoordinatorMessage> Outbox::Pop() {
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(
      +[](Outbox* o) ABSL_NO_THREAD_SAFETY_ANALYSIS { return o->closed_ || !o->queue_.empty(); },
      this));
  if (queue_.empty()) return std::nullopt;
  v1::CoordinatorMessage m = std::move(queue_.front());
  queue_.pop_front();
  return m;
}

void Outbox::Close() {
  absl::MutexLock l(&mu_);
  closed_ = true;
  queue_.clear();
}

std::shared_ptr<Outbox> WorkerRegistry::Register(const std::string& id, const std::string& address,
                                                 uint32_t max_tasks, const std::string& version) {
  auto outbox = std::make_shared<Outbox>();
  std::shared_ptr<Outbox> old;
  {
    absl::MutexLock l(&mu_);
    Worker& w = workers_[id];
    old = w.outbox;
    w.info.id = id;
    w.info.address = address;
    w.info.max_tasks = max_tasks == 0 ? 1 : max_tasks;
    w.info.version = version;
    w.info.last_heartbeat_ms = clock_->NowMs();
    w.info.connected = true;
    w.info.ended_clean = false;
    w.outbox = outbox;
  }
  if (old) old->Close();
  return outbox;
}

bool WorkerRegistry::Heartbeat(const std::string& id, uint64_t inflight, uint64_t acked_epoch) {
  absl::MutexLock l(&mu_);
  auto it = workers_.find(id);
  if (it == workers_.end()) return false;
  it->second.info.last_heartbeat_ms = clock_->NowMs();
  it->second.info.inflight_writes = inflight;
  (void)acked_epoch;  // acks count only through routing_ack (it promises drained writes)
  return true;
}

void WorkerRegistry::Ack(const std::string& id, uint64_t epoch) {
  absl::MutexLock l(&mu_);
  auto it = workers_.find(id);
  if (it != workers_.end() && epoch > it->second.info.acked_epoch) {
    it->second.info.acked_epoch = epoch;
  }
}

void WorkerRegistry::Disconnect(const std::string& id, const std::shared_ptr<Outbox>& outbox) {
  absl::MutexLock l(&mu_);
  auto it = workers_.find(id);
  if (it != workers_.end() && it->second.outbox == outbox) {
    it->second.info.connected = false;
    it->second.outbox.reset();
  }
  outbox->Close();
}

bool WorkerRegistry::LiveLocked(const Worker& w, int64_t now) const {
  return absl::Milliseconds(now - w.info.last_heartbeat_ms) < ttl_;
}

void WorkerRegistry::EndedClean(const std::string& id) {
  absl::MutexLock l(&mu_);
  auto it = workers_.find(id);
  if (it != workers_.end()) it->second.info.ended_clean = true;
}

std::vector<WorkerSnapshot> WorkerRegistry::ExpireLeases() {
  std::vector<WorkerSnapshot> out;
  std::vector<std::shared_ptr<Outbox>> closing;
  {
    absl::MutexLock l(&mu_);
    const int64_t now = clock_->NowMs();
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (!LiveLocked(it->second, now)) {
        out.push_back(it->second.info);
        if (it->second.outbox) closing.push_back(it->second.outbox);
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& o : closing) o->Close();
  return out;
}

bool WorkerRegistry::Known(const std::string& id) const {
  absl::ReaderMutexLock l(&mu_);
  return workers_.count(id) > 0;
}

bool WorkerRegistry::IsLive(const std::string& id) const {
  absl::ReaderMutexLock l(&mu_);
  auto it = workers_.find(id);
  return it != workers_.end() && LiveLocked(it->second, clock_->NowMs());
}

std::vector<WorkerSnapshot> WorkerRegistry::Live() const {
  absl::ReaderMutexLock l(&mu_);
  const int64_t now = clock_->NowMs();
  std::vector<WorkerSnapshot> out;
  for (const auto& [id, w] : workers_) {
    if (LiveLocked(w, now)) out.push_back(w.info);
  }
  return out;
}

bool WorkerRegistry::AllLiveAcked(uint64_t epoch) const {
  absl::ReaderMutexLock l(&mu_);
  const int64_t now = clock_->NowMs();
  for (const auto& [id, w] : workers_) {
    if (LiveLocked(w, now) && w.info.acked_epoch < epoch) return false;
  }
  return true;
}

bool WorkerRegistry::Send(const std::string& id, const v1::CoordinatorMessage& msg) {
  std::shared_ptr<Outbox> outbox;
  {
    absl::ReaderMutexLock l(&mu_);
    auto it = workers_.find(id);
    if (it == workers_.end() || !it->second.outbox) return false;
    outbox = it->second.outbox;
  }
  outbox->Push(msg);
  return true;
}

void WorkerRegistry::Broadcast(const v1::CoordinatorMessage& msg) {
  std::vector<std::shared_ptr<Outbox>> outboxes;
  {
    absl::ReaderMutexLock l(&mu_);
    for (const auto& [id, w] : workers_) {
      if (w.outbox) outboxes.push_back(w.outbox);
    }
  }
  for (auto& o : outboxes) o->Push(msg);
}

}  // namespace miroir::coordinator
