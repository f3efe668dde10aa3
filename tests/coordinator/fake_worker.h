// FakeWorker: a test client speaking the real WorkerControl protocol over gRPC.
// It registers, heartbeats, acks every view and completes tasks with plausible
// results (watermarks per source/target), unless told to hold a task kind.
// Threads: its own reader and heartbeat threads; accessors are thread-safe.
#ifndef MIROIR_TESTS_COORDINATOR_FAKE_WORKER_H_
#define MIROIR_TESTS_COORDINATOR_FAKE_WORKER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "miroir/v1/worker_control.grpc.pb.h"

namespace miroir::testing {

namespace v1 = ::miroir::v1;

class FakeWorker {
 public:
  FakeWorker(const std::string& target, std::string id) : id_(std::move(id)) {
    channel_ = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    stub_ = v1::WorkerControl::NewStub(channel_);
  }
  ~FakeWorker() { Stop(); }

  // Task kinds it receives but does not answer (the task stays leased).
  void Hold(v1::TaskKind kind) {
    absl::MutexLock l(&mu_);
    held_.insert(kind);
  }
  void Release(v1::TaskKind kind) {
    absl::MutexLock l(&mu_);
    held_.erase(kind);
  }
  // Stops holding `kind` and answers every task of it held so far, in one burst.
  void ReleaseHeld(v1::TaskKind kind) {
    std::vector<v1::Task> answer;
    {
      absl::MutexLock l(&mu_);
      held_.erase(kind);
      std::vector<v1::Task> keep;
      for (auto& t : held_tasks_) (t.kind() == kind ? answer : keep).push_back(std::move(t));
      held_tasks_ = std::move(keep);
    }
    for (const auto& t : answer) Answer(t);
  }
  // Task kinds it answers with a non-retryable TaskFailed.
  void Fail(v1::TaskKind kind) {
    absl::MutexLock l(&mu_);
    failing_.insert(kind);
  }
  void StopFailing(v1::TaskKind kind) {
    absl::MutexLock l(&mu_);
    failing_.erase(kind);
  }
  // The incarnation its fences report for `node` from now on (default "inc-NODE"):
  // a store node restarted empty.
  void SetIncarnation(const std::string& node, const std::string& inc) {
    absl::MutexLock l(&mu_);
    incarnations_[node] = inc;
  }
  // Stop acking views (simulates a worker with writes in flight).
  void SetAcking(bool on) { acking_ = on; }
  // Send a progress with a wrong lease generation first, record the answer.
  void ProbeStaleGeneration() { probe_stale_ = true; }

  void Start() {
    stream_ = stub_->Session(&ctx_);
    v1::WorkerMessage reg;
    reg.mutable_register_()->set_worker_id(id_);
    reg.mutable_register_()->set_address("127.0.0.1:1");
    reg.mutable_register_()->set_max_tasks(4);
    Write(reg);
    reader_ = std::thread([this] { ReadLoop(); });
    heartbeat_ = std::thread([this] {
      while (!stop_) {
        v1::WorkerMessage hb;
        hb.mutable_heartbeat()->set_acked_epoch(acked_);
        Write(hb);
        for (int i = 0; i < 5 && !stop_; ++i) absl::SleepFor(absl::Milliseconds(20));
      }
    });
  }

  void Stop() {
    if (stop_.exchange(true)) return;
    ctx_.TryCancel();
    if (heartbeat_.joinable()) heartbeat_.join();
    if (reader_.joinable()) reader_.join();
  }

  std::vector<v1::TaskKind> kinds() {
    absl::MutexLock l(&mu_);
    return kinds_;
  }
  std::vector<v1::Task> held_tasks() {
    absl::MutexLock l(&mu_);
    return held_tasks_;
  }
  // Every view received, by epoch (serialized).
  std::map<uint64_t, std::string> views() {
    absl::MutexLock l(&mu_);
    return views_;
  }
  uint64_t last_view_epoch() const { return acked_view_; }
  // Reports `node` reachable with incarnation `inc` (as the real worker's probe does);
  // its fences report `inc` from now on too.
  void ReportNode(const std::string& node, const std::string& inc) {
    SetIncarnation(node, inc);
    v1::WorkerMessage m;
    m.mutable_node_report()->set_node(node);
    m.mutable_node_report()->set_incarnation(inc);
    m.mutable_node_report()->set_reachable(true);
    Write(m);
  }
  // Sends a miss report on the session stream.
  void SendMisses(const v1::MissReport& report) {
    v1::WorkerMessage m;
    *m.mutable_misses() = report;
    Write(m);
  }
  // The last read-exclusion list received, and how many were received.
  v1::ReadExclusions last_read_exclusions() {
    absl::MutexLock l(&mu_);
    return last_exclusions_;
  }
  int read_exclusion_lists() {
    absl::MutexLock l(&mu_);
    return exclusion_lists_;
  }
  int stale_refused() const { return stale_refused_; }
  int accepted() const { return accepted_; }

 private:
  void Write(const v1::WorkerMessage& m) {
    absl::MutexLock l(&write_mu_);
    if (stream_) stream_->Write(m);
  }

  void ReadLoop() {
    v1::CoordinatorMessage m;
    while (stream_->Read(&m)) {
      if (m.has_view()) {
        acked_view_ = m.view().epoch();
        {
          absl::MutexLock l(&mu_);
          views_[m.view().epoch()] = m.view().SerializeAsString();
        }
        if (acking_) {
          acked_ = m.view().epoch();
          v1::WorkerMessage ack;
          ack.mutable_routing_ack()->set_epoch(m.view().epoch());
          Write(ack);
        }
      } else if (m.has_read_exclusions()) {
        absl::MutexLock l(&mu_);
        last_exclusions_ = m.read_exclusions();
        ++exclusion_lists_;
      } else if (m.has_task()) {
        HandleTask(m.task());
      } else if (m.has_checkpoint_ack()) {
        if (m.checkpoint_ack().accepted()) {
          ++accepted_;
        } else {
          ++stale_refused_;
        }
      }
    }
  }

  void HandleTask(const v1::Task& t) {
    {
      absl::MutexLock l(&mu_);
      kinds_.push_back(t.kind());
      if (held_.count(t.kind())) {
        held_tasks_.push_back(t);
        return;
      }
      if (failing_.count(t.kind())) {
        v1::WorkerMessage f;
        f.mutable_failed()->set_task_id(t.id());
        f.mutable_failed()->set_lease_generation(t.lease_generation());
        f.mutable_failed()->set_error("injected failure");
        f.mutable_failed()->set_retryable(false);
        Write(f);
        return;
      }
    }
    Answer(t);
  }

  // Progress, then a completion with plausible results.
  void Answer(const v1::Task& t) {
    if (probe_stale_.exchange(false)) {
      v1::WorkerMessage p;
      p.mutable_progress()->set_task_id(t.id());
      p.mutable_progress()->set_lease_generation(t.lease_generation() + 7);
      Write(p);
    }
    v1::WorkerMessage p;
    p.mutable_progress()->set_task_id(t.id());
    p.mutable_progress()->set_lease_generation(t.lease_generation());
    p.mutable_progress()->mutable_checkpoint()->set_documents(3);
    Write(p);
    v1::WorkerMessage done;
    auto* c = done.mutable_complete();
    c->set_task_id(t.id());
    c->set_lease_generation(t.lease_generation());
    auto* r = c->mutable_result();
    auto incarnation = [this](const std::string& n) {
      absl::MutexLock l(&mu_);
      auto it = incarnations_.find(n);
      return it == incarnations_.end() ? "inc-" + n : it->second;
    };
    auto add_marks = [&](const google::protobuf::RepeatedPtrField<std::string>& nodes) {
      for (const auto& n : nodes) {
        auto* w = r->add_watermarks();
        w->set_node(n);
        w->set_incarnation(incarnation(n));
        w->set_seq(10);
      }
    };
    // The re-read of the joining nodes a task names (fenced at its epoch).
    for (const auto& j : t.joining()) {
      auto* w = r->add_joining();
      w->set_node(j.node());
      w->set_incarnation(incarnation(j.node()));
      w->set_seq(10);
    }
    switch (t.kind()) {
      case v1::TASK_PREPARE:
        add_marks(t.targets());
        break;
      case v1::TASK_BACKFILL:
        add_marks(t.sources());
        r->set_documents(3);
        break;
      case v1::TASK_CATCH_UP:
        add_marks(t.sources());
        r->set_remaining(0);
        break;
      case v1::TASK_FENCE:
        add_marks(t.targets());
        break;
      case v1::TASK_VERIFY:
        for (const auto& n : t.sources()) {
          auto* d = r->add_digests();
          d->set_node(n);
          d->set_documents(5);
          d->set_digest("abcd");
        }
        break;
      default:
        break;
    }
    Write(done);
  }

  const std::string id_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerControl::Stub> stub_;
  grpc::ClientContext ctx_;
  absl::Mutex write_mu_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>> stream_;
  std::thread reader_, heartbeat_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> acking_{true};
  std::atomic<bool> probe_stale_{false};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> acked_view_{0};
  std::atomic<int> stale_refused_{0};
  std::atomic<int> accepted_{0};
  absl::Mutex mu_;
  std::set<v1::TaskKind> held_ ABSL_GUARDED_BY(mu_);
  std::set<v1::TaskKind> failing_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::TaskKind> kinds_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Task> held_tasks_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> views_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> incarnations_ ABSL_GUARDED_BY(mu_);
  v1::ReadExclusions last_exclusions_ ABSL_GUARDED_BY(mu_);
  int exclusion_lists_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_COORDINATOR_FAKE_WORKER_H_
