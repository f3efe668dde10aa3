#include "worker/coordinator_session.h"

#include <algorithm>
#include <iterator>
#include <vector>

#include "common/build_info.h"
#include "common/grpc_server.h"
#include "common/route_sets.h"
#include "spdlog/spdlog.h"
#include "worker/view_change.h"

namespace miroir {

CoordinatorSession::CoordinatorSession(SessionOptions options, Router* router,
                                       InflightTracker* inflight, NodeStores* stores)
    : options_(std::move(options)),
      router_(router),
      inflight_(inflight),
      stores_(stores),
      misses_(options_.miss_queue_entries) {
  coordinators_ = SplitAddressList(options_.coordinator);
  if (coordinators_.empty()) coordinators_.push_back(options_.coordinator);
  for (const auto& a : coordinators_) stubs_.push_back(v1::WorkerControl::NewStub(MakeChannel(a)));
}

CoordinatorSession::~CoordinatorSession() { Stop(); }

void CoordinatorSession::set_task_sink(TaskSink* sink) {
  absl::MutexLock l(&mu_);
  sink_ = sink;
}

void CoordinatorSession::Start() {
  started_.store(true);
  stream_thread_ = std::thread([this] { StreamLoop(); });
  ticker_thread_ = std::thread([this] { TickerLoop(); });
  report_thread_ = std::thread([this] { NodeReportLoop(); });
  miss_thread_ = std::thread([this] { MissReportLoop(); });
}

void CoordinatorSession::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  {
    absl::MutexLock l(&mu_);
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  if (stream_thread_.joinable()) stream_thread_.join();
  if (ticker_thread_.joinable()) ticker_thread_.join();
  if (report_thread_.joinable()) report_thread_.join();
  if (miss_thread_.joinable()) miss_thread_.join();
  // Once: the last misses, and word that this session ends clean.
  if (started_.load() && !stopped_.exchange(true)) FlushMisses(/*stopping=*/true);
}

bool CoordinatorSession::LeaseValid() const {
  absl::MutexLock l(&mu_);
  return lease_ttl_ms_ > 0 && std::chrono::steady_clock::now() < lease_until_;
}

bool CoordinatorSession::Connected() const {
  absl::MutexLock l(&mu_);
  return registered_;
}

bool CoordinatorSession::Send(const v1::WorkerMessage& msg) {
  absl::MutexLock l(&send_mu_);
  if (stream_ == nullptr) return false;
  return stream_->Write(msg);
}

void CoordinatorSession::StreamLoop() {
  absl::Duration backoff = absl::Milliseconds(50);
  size_t tried_in_round = 0;
  while (!stop_.HasBeenNotified()) {
    const absl::Time started = absl::Now();
    RunOneStream();
    if (stop_.HasBeenNotified()) break;
    if (absl::Now() - started > absl::Seconds(5)) backoff = absl::Milliseconds(50);
    if (absl::Now() - started > absl::Seconds(1)) tried_in_round = 0;  // it was serving
    // With several coordinators, move on to the next one at once (a standby
    // answers UNAVAILABLE naming the leader; a dead leader does not answer);
    // back off only after every one was tried, and never longer than a
    // heartbeat interval while a lease is held (DESIGN §9a).
    if (coordinators_.size() > 1) {
      current_.store((current_.load() + 1) % coordinators_.size());
      if (++tried_in_round < coordinators_.size()) {
        stop_.WaitForNotificationWithTimeout(absl::Milliseconds(20));
        continue;
      }
      tried_in_round = 0;
    }
    absl::Duration cap = options_.max_backoff;
    {
      absl::MutexLock l(&mu_);
      if (lease_ttl_ms_ > 0) cap = std::min(cap, absl::Milliseconds(lease_ttl_ms_ / 3));
    }
    stop_.WaitForNotificationWithTimeout(backoff);
    backoff = std::min(backoff * 2, cap);
  }
}

void CoordinatorSession::RunOneStream() {
  grpc::ClientContext ctx;
  {
    absl::MutexLock l(&mu_);
    if (stop_.HasBeenNotified()) return;
    ctx_ = &ctx;
    stream_started_ = std::chrono::steady_clock::now();
  }
  auto stream = stub()->Session(&ctx);
  v1::WorkerMessage reg;
  reg.mutable_register_()->set_worker_id(options_.worker_id);
  reg.mutable_register_()->set_address(options_.address);
  reg.mutable_register_()->set_max_tasks(options_.max_tasks);
  reg.mutable_register_()->set_version(BuildVersion());
  const SteadyTime reg_sent = std::chrono::steady_clock::now();
  if (stream->Write(reg)) {
    {
      absl::MutexLock l(&send_mu_);
      stream_ = stream.get();
    }
    v1::CoordinatorMessage in;
    while (stream->Read(&in)) {
      switch (in.msg_case()) {
        case v1::CoordinatorMessage::kRegisterAck: {
          absl::MutexLock l(&mu_);
          if (!terms_.Admit(in.register_ack().term())) {
            // A deposed leader (DESIGN §9a): no lease from it; try the next one.
            spdlog::warn("coordinator {} answered at term {}, below term {} seen: leaving it",
                         coordinators_[current_.load() % coordinators_.size()],
                         in.register_ack().term(), terms_.highest());
            ctx.TryCancel();
            break;
          }
          registered_ = true;
          lease_ttl_ms_ = std::max<uint64_t>(in.register_ack().lease_ttl_ms(), 1);
          lease_until_ = reg_sent + std::chrono::milliseconds(lease_ttl_ms_);
          next_heartbeat_ = std::chrono::steady_clock::now();
          heartbeat_sends_.clear();
          acked_epoch_ = 0;
          spdlog::info("registered with coordinator {} as {} (lease ttl {} ms)",
                       coordinators_[current_.load() % coordinators_.size()], options_.worker_id,
                       lease_ttl_ms_);
          break;
        }
        case v1::CoordinatorMessage::kHeartbeatAck: {
          absl::MutexLock l(&mu_);
          // Acks carry no id: match them to sends in order. Sends older than a TTL
          // can no longer renew anything (a coordinator that skipped them) and are
          // dropped, so the match is never later than the true send (safe) and the
          // lease recovers once heartbeats are answered again.
          const SteadyTime now = std::chrono::steady_clock::now();
          while (heartbeat_sends_.size() > 1 &&
                 heartbeat_sends_.front() + std::chrono::milliseconds(lease_ttl_ms_) <= now) {
            heartbeat_sends_.pop_front();
          }
          if (!heartbeat_sends_.empty()) {
            const SteadyTime sent = heartbeat_sends_.front();
            heartbeat_sends_.pop_front();
            lease_ttl_ms_ = std::max<uint64_t>(in.heartbeat_ack().lease_ttl_ms(), 1);
            lease_until_ = std::max(lease_until_, sent + std::chrono::milliseconds(lease_ttl_ms_));
          }
          break;
        }
        case v1::CoordinatorMessage::kView: {
          bool admit;
          {
            absl::MutexLock l(&mu_);
            admit = terms_.Admit(in.view().term());
          }
          if (admit) {
            OnView(in.view());
          } else {
            spdlog::warn("dropped epoch {} of term {}: term {} seen", in.view().epoch(),
                         in.view().term(), HighestTerm());
          }
          break;
        }
        case v1::CoordinatorMessage::kReadExclusions:
          if (read_exclusions_ != nullptr) read_exclusions_->Apply(in.read_exclusions());
          break;
        case v1::CoordinatorMessage::kTask:
        case v1::CoordinatorMessage::kCancel:
        case v1::CoordinatorMessage::kCheckpointAck: {
          TaskSink* sink;
          {
            absl::MutexLock l(&mu_);
            sink = sink_;
          }
          if (sink == nullptr) break;
          if (in.has_task()) {
            bool admit;
            {
              absl::MutexLock l(&mu_);
              admit = terms_.Admit(in.task().term());
            }
            if (!admit) {
              spdlog::warn("dropped task {} of term {}: term {} seen", in.task().id(),
                           in.task().term(), HighestTerm());
              break;
            }
            sink->OnTask(in.task());
          }
          if (in.has_cancel()) sink->OnCancel(in.cancel().task_id());
          if (in.has_checkpoint_ack()) {
            sink->OnCheckpointAck(in.checkpoint_ack().task_id(),
                                  in.checkpoint_ack().lease_generation(),
                                  in.checkpoint_ack().accepted());
          }
          break;
        }
        default:
          break;
      }
    }
  }
  {
    absl::MutexLock l(&send_mu_);
    stream_ = nullptr;
  }
  grpc::Status st = stream->Finish();
  {
    absl::MutexLock l(&mu_);
    ctx_ = nullptr;
    if (registered_) {
      spdlog::warn("coordinator session ended: {}; reconnecting", st.error_message());
    }
    registered_ = false;
    heartbeat_sends_.clear();
  }
}

void CoordinatorSession::OnView(const v1::ClusterView& view) {
  const std::shared_ptr<const RoutingSnapshot> before = router_->Current();
  if (router_->Apply(view)) {
    spdlog::info("applied routing epoch {}", view.epoch());
    // Against the view this worker routed with before (an older one if another
    // thread applied in between: a superset of the change, so still safe).
    ViewChange change = DiffViews(before->view(), view);
    absl::MutexLock l(&mu_);
    auto at = pending_acks_.end();
    while (at != pending_acks_.begin() && std::prev(at)->epoch > view.epoch()) --at;
    pending_acks_.insert(
        at, PendingAck{view.epoch(), std::move(change), std::chrono::steady_clock::now()});
  }
  // Ack at once when nothing it waits for is in flight: a cutover waits for every
  // worker's ack of its pausing epoch, so the ticker's next round is too late.
  MaybeAck();
}

bool CoordinatorSession::MaybeAck() {
  uint64_t ack_epoch = 0;
  {
    absl::MutexLock l(&mu_);
    // Epoch E is drained once no write routed at an older epoch to a shard whose
    // route E changed is in flight (every write, when more than routes changed).
    const SteadyTime now = std::chrono::steady_clock::now();
    while (!pending_acks_.empty()) {
      const PendingAck& p = pending_acks_.front();
      if (now < p.applied + absl::ToChronoMilliseconds(options_.test_ack_delay)) break;
      const bool drained = p.change.everything
                               ? inflight_->NoneBelow(p.epoch)
                               : inflight_->NoneBelowTouching(p.epoch, p.change.shards);
      if (!drained) break;
      drained_epoch_ = std::max(drained_epoch_, p.epoch);
      pending_acks_.pop_front();
    }
    if (!registered_ || drained_epoch_ <= acked_epoch_) return !pending_acks_.empty();
    ack_epoch = drained_epoch_;
  }
  v1::WorkerMessage ack;
  ack.mutable_routing_ack()->set_epoch(ack_epoch);
  const bool sent = Send(ack);
  absl::MutexLock l(&mu_);
  if (sent) acked_epoch_ = std::max(acked_epoch_, ack_epoch);
  return !pending_acks_.empty() || drained_epoch_ > acked_epoch_;
}

void CoordinatorSession::RefreshView(uint64_t min_epoch) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::GetViewRequest req;
  req.set_min_epoch(min_epoch);
  v1::ClusterView view;
  grpc::Status st = stub()->GetView(&ctx, req, &view);
  if (!st.ok()) {
    spdlog::warn("GetView(min_epoch={}) failed: {}", min_epoch, st.error_message());
    return;
  }
  OnView(view);
}

void CoordinatorSession::ReportMiss(const std::string& node, const std::string& index,
                                    uint64_t generation, uint32_t shard) {
  absl::MutexLock l(&miss_mu_);
  misses_.Add(node, index, generation, shard);
  // Reads skip it at once; under miss_mu_ so the next report taken carries it.
  if (read_exclusions_ != nullptr) read_exclusions_->AddOwnMiss(node, generation, shard);
}

void CoordinatorSession::MissReportLoop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.miss_report_interval)) {
    if (!misses_.empty()) FlushMisses(/*stopping=*/false);
  }
}

bool CoordinatorSession::FlushMisses(bool stopping) {
  v1::MissReport report;
  {
    // The report and the own misses it confirms are taken together (ReadExclusions).
    absl::MutexLock l(&miss_mu_);
    report = misses_.Take();
    if (report.misses_size() == 0 && !stopping) return true;
    report.set_seq(++report_seq_);
    if (read_exclusions_ != nullptr) read_exclusions_->ReportSent(report_seq_);
  }
  report.set_worker_id(options_.worker_id);
  report.set_stopping(stopping);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::MissReportAck ack;
  grpc::Status st = stub()->ReportMisses(&ctx, report, &ack);
  if (!st.ok()) {
    misses_.Return(report);
    if (!miss_report_failing_.exchange(true) || stopping) {
      spdlog::warn("reporting {} misses failed: {}; {}", report.misses_size(), st.error_message(),
                   stopping ? "the coordinator will repair every shard when this worker's "
                              "lease runs out"
                            : "kept for the next attempt");
    }
    return false;
  }
  // The list the coordinator answers with reflects this report: its misses are
  // no longer excluded on this worker's own account.
  if (read_exclusions_ != nullptr) read_exclusions_->Apply(ack.read_exclusions());
  if (miss_report_failing_.exchange(false)) {
    spdlog::info("misses reported again ({} recovery passes scheduled)", ack.scheduled());
  }
  return true;
}

bool CoordinatorSession::CancelIfSilent(SteadyTime now) {
  // One coordinator: nowhere else to go; the lease says what it may still serve.
  if (coordinators_.size() < 2 || ctx_ == nullptr) return false;
  // A coordinator answers a heartbeat at once; one that leaves it unanswered for
  // a heartbeat interval (a registration: for a second at most) is stopped or cut
  // off, and the leader may have moved: the next one is tried while the lease
  // still holds (the config keeps 2 x etcd lease + one interval < the lease).
  const auto interval = std::chrono::milliseconds(lease_ttl_ms_ > 0 ? lease_ttl_ms_ / 3 : 3000);
  const char* what = nullptr;
  std::chrono::steady_clock::duration silent{};
  if (!registered_) {
    silent = now - stream_started_;
    if (silent > std::min<std::chrono::steady_clock::duration>(interval, std::chrono::seconds(1))) {
      what = "the registration";
    }
  } else if (!heartbeat_sends_.empty()) {
    silent = now - heartbeat_sends_.front();
    if (silent > interval) what = "a heartbeat";
  }
  if (what == nullptr) return false;
  spdlog::warn("coordinator {} left {} unanswered for {} ms; trying the next coordinator",
               coordinators_[current_.load() % coordinators_.size()], what,
               std::chrono::duration_cast<std::chrono::milliseconds>(silent).count());
  ctx_->TryCancel();
  ctx_ = nullptr;  // cancelled once; RunOneStream clears it again as it ends
  return true;
}

void CoordinatorSession::TickerLoop() {
  bool ack_pending = false;
  // While an ack waits for in-flight writes to settle, look every millisecond.
  while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(ack_pending ? 1 : 5))) {
    const SteadyTime now = std::chrono::steady_clock::now();
    bool heartbeat = false;
    {
      absl::MutexLock l(&mu_);
      if (CancelIfSilent(now)) continue;
      if (!registered_) continue;
      if (now >= next_heartbeat_) {
        heartbeat = true;
        heartbeat_sends_.push_back(now);
        next_heartbeat_ = now + std::chrono::milliseconds(std::max<uint64_t>(lease_ttl_ms_ / 3, 1));
      }
    }
    if (heartbeat) {
      v1::WorkerMessage hb;
      hb.mutable_heartbeat()->set_inflight_writes(inflight_->Total());
      hb.mutable_heartbeat()->set_acked_epoch(router_->epoch());
      Send(hb);
    }
    ack_pending = MaybeAck();
  }
}

void CoordinatorSession::NodeReportLoop() {
  // The first report goes out as soon as the session is up: the coordinator learns
  // each node's incarnation early, so a node that later comes back empty is noticed.
  bool reported = false;
  while (!stop_.WaitForNotificationWithTimeout(reported ? options_.node_report_interval
                                                        : absl::Milliseconds(100))) {
    if (Connected()) {
      SendNodeReports();
      reported = true;
    }
  }
}

void CoordinatorSession::SendNodeReports() {
  auto snap = router_->Current();
  for (const auto& node : snap->view().nodes()) {
    if (stop_.HasBeenNotified()) return;
    v1::WorkerMessage msg;
    v1::NodeReport* rep = msg.mutable_node_report();
    rep->set_node(node.id());
    auto store = stores_->Get(*snap, node.id());
    absl::StatusOr<std::string> inc =
        store.ok() ? (*store)->Incarnation() : absl::StatusOr<std::string>(store.status());
    rep->set_reachable(inc.ok());
    if (inc.ok()) {
      rep->set_incarnation(*inc);
      if (auto cap = (*store)->Capacity(); cap.ok()) {
        rep->set_capacity_bytes(cap->capacity_bytes);
        rep->set_used_bytes(cap->used_bytes);
      }
      if (auto conf = (*store)->DurabilityConfig(); conf.ok()) {
        rep->mutable_store_config()->insert(conf->begin(), conf->end());
      }
      for (const auto& g : snap->view().generations()) {
        for (const auto& r : g.routes()) {
          bool holds = false;
          for (const auto& grp : WriteSet(r)) {
            for (const auto& n : grp.nodes()) holds = holds || n == node.id();
          }
          if (!holds) continue;
          auto st = (*store)->Stats(ShardKey{g.index(), g.generation(), r.shard()});
          if (!st.ok()) continue;
          auto* s = rep->add_shards();
          s->set_node(node.id());
          s->set_index(g.index());
          s->set_generation(g.generation());
          s->set_shard(r.shard());
          s->set_documents(st->documents);
          s->set_bytes(st->bytes);
          s->set_tombstones(st->tombstones);
        }
      }
    }
    Send(msg);
  }
}

}  // namespace miroir
