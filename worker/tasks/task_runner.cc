#include "worker/tasks/task_runner.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
#include "worker/tasks/cutover_yield.h"
#include "worker/tasks/task_executors.h"
#include "worker/tasks/task_failure.h"

namespace miroir {

TaskRunner::TaskRunner(Router* router, NodeStores* stores, SendFn send,
                       absl::Duration checkpoint_interval)
    : router_(router),
      stores_(stores),
      send_(std::move(send)),
      checkpoint_interval_(checkpoint_interval) {}

TaskRunner::TaskRunner(Router* router, NodeStores* stores, CoordinatorSession* session)
    : TaskRunner(router, stores,
                 [session](const v1::WorkerMessage& m) { return session->Send(m); }) {}

TaskRunner::~TaskRunner() { Stop(); }

void TaskRunner::ReapLocked() {
  for (auto it = retired_.begin(); it != retired_.end();) {
    if ((*it)->finished.load()) {
      if ((*it)->thread.joinable()) (*it)->thread.join();
      it = retired_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    if (it->second->finished.load()) {
      if (it->second->thread.joinable()) it->second->thread.join();
      it = tasks_.erase(it);
    } else {
      ++it;
    }
  }
}

void TaskRunner::OnTask(const v1::Task& task) {
  absl::MutexLock l(&mu_);
  if (stopping_.load()) return;
  ReapLocked();
  auto it = tasks_.find(task.id());
  if (it != tasks_.end()) {
    if (it->second->task.lease_generation() >= task.lease_generation()) return;  // duplicate
    it->second->cancelled.store(true);
    retired_.push_back(it->second);
    tasks_.erase(it);
  }
  auto r = std::make_shared<Running>();
  r->task = task;
  spdlog::info("task {} ({}) lease {} epoch {}: {}/{} shard {}", task.id(),
               v1::TaskKind_Name(task.kind()), task.lease_generation(), task.epoch(), task.index(),
               task.generation(), task.shard());
  r->thread = std::thread([this, r] { Run(r); });
  tasks_[task.id()] = r;
}

void TaskRunner::OnCancel(uint64_t task_id) {
  absl::MutexLock l(&mu_);
  auto it = tasks_.find(task_id);
  if (it != tasks_.end()) it->second->cancelled.store(true);
}

void TaskRunner::OnCheckpointAck(uint64_t task_id, uint64_t lease_generation, bool accepted) {
  if (accepted) return;
  absl::MutexLock l(&mu_);
  auto it = tasks_.find(task_id);
  // A refusal answers one run: a newer lease of the same task that replaced it
  // meanwhile keeps running.
  if (it != tasks_.end() &&
      (lease_generation == 0 || it->second->task.lease_generation() == lease_generation)) {
    spdlog::info("task {}: checkpoint refused (stale lease); stopping", task_id);
    it->second->cancelled.store(true);
  }
}

void TaskRunner::Stop() {
  stopping_.store(true);
  std::vector<std::shared_ptr<Running>> all;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, r] : tasks_) all.push_back(r);
    for (auto& r : retired_) all.push_back(r);
    tasks_.clear();
    retired_.clear();
  }
  for (auto& r : all) r->cancelled.store(true);
  for (auto& r : all) {
    if (r->thread.joinable()) r->thread.join();
  }
}

size_t TaskRunner::running() const {
  absl::MutexLock l(&mu_);
  size_t n = 0;
  for (const auto& [id, r] : tasks_) n += r->finished.load() ? 0 : 1;
  return n;
}

void TaskRunner::SendFinal(const Running& r, const v1::WorkerMessage& msg) {
  for (int i = 0; i < 600; ++i) {
    if (r.cancelled.load() || stopping_.load()) return;
    if (send_(msg)) return;
    absl::SleepFor(absl::Milliseconds(100));
  }
}

void TaskRunner::YieldToCutovers(const Running& r) {
  const absl::Time start = absl::Now();
  const absl::Time give_up = start + kMaxCutoverYield;
  bool waited = false;
  while (!r.cancelled.load() && !stopping_.load()) {
    std::shared_ptr<const RoutingSnapshot> view = router_->Current();
    if (!TouchesCutover(r.task, view->CutoverNodes())) break;
    const absl::Time now = absl::Now();
    if (now >= give_up) break;
    waited = true;
    // Short waits, so a cancel or a stop is seen soon.
    router_->WaitForNewer(view->epoch(), std::min(give_up, now + absl::Milliseconds(20)));
  }
  if (waited) {
    yield_us_.fetch_add(static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - start)));
  }
}

void TaskRunner::Run(std::shared_ptr<Running> r) {
  const v1::Task& t = r->task;
  TaskContext ctx;
  ctx.task = t;
  ctx.store = [this](const std::string& id) { return stores_->Get(*router_->Current(), id); };
  ctx.cancelled = [r, this] { return r->cancelled.load() || stopping_.load(); };
  ctx.checkpoint = [r, this](const v1::Checkpoint& cp) {
    if (r->cancelled.load() || stopping_.load()) return false;
    const absl::Time now = absl::Now();
    if (now - r->last_checkpoint < checkpoint_interval_) return true;
    r->last_checkpoint = now;
    v1::WorkerMessage m;
    auto* p = m.mutable_progress();
    p->set_task_id(r->task.id());
    p->set_lease_generation(r->task.lease_generation());
    *p->mutable_checkpoint() = cp;
    send_(m);  // a lost checkpoint only means a longer resume
    return !r->cancelled.load();
  };
  ctx.on_copied = [this](uint64_t n) { copied_.fetch_add(n); };
  if (YieldsToCutovers(t)) ctx.yield = [r, this] { YieldToCutovers(*r); };
  absl::StatusOr<v1::TaskResult> res = RunTask(ctx);
  if (r->cancelled.load() || stopping_.load() ||
      res.status().code() == absl::StatusCode::kCancelled) {
    spdlog::info(
        "task {} ({}) stopped: {}", t.id(), v1::TaskKind_Name(t.kind()),
        res.ok() ? std::string("finished after it was cancelled") : res.status().ToString());
  }
  if (!r->cancelled.load() && !stopping_.load()) {
    v1::WorkerMessage m;
    if (res.ok()) {
      auto* c = m.mutable_complete();
      c->set_task_id(t.id());
      c->set_lease_generation(t.lease_generation());
      *c->mutable_result() = *res;
      spdlog::info("task {} ({}) complete: {} documents", t.id(), v1::TaskKind_Name(t.kind()),
                   res->documents());
    } else if (res.status().code() != absl::StatusCode::kCancelled) {
      auto* f = m.mutable_failed();
      f->set_task_id(t.id());
      f->set_lease_generation(t.lease_generation());
      f->set_error(std::string(res.status().message()));
      f->set_reason(TaskFailureOf(res.status()));
      f->set_retryable(res.status().code() == absl::StatusCode::kUnavailable ||
                       res.status().code() == absl::StatusCode::kDeadlineExceeded ||
                       res.status().code() == absl::StatusCode::kNotFound);
      spdlog::warn("task {} ({}) failed: {}", t.id(), v1::TaskKind_Name(t.kind()),
                   res.status().ToString());
    }
    if (m.msg_case() != v1::WorkerMessage::MSG_NOT_SET) SendFinal(*r, m);
  }
  r->finished.store(true);
}

}  // namespace miroir
