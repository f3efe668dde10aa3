#include "coordinator/standby_refresher.h"

#include "spdlog/spdlog.h"

namespace miroir::coordinator {

StandbyRefresher::StandbyRefresher(EtcdClient* client, EtcdLayout layout, Coordinator* core,
                                   absl::Duration min_interval)
    : client_(client), layout_(std::move(layout)), core_(core), min_interval_(min_interval) {
  watcher_ = std::thread([this] { WatchLoop(); });
  reloader_ = std::thread([this] { ReloadLoop(); });
}

StandbyRefresher::~StandbyRefresher() { Stop(); }

void StandbyRefresher::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    if (watch_ctx_ != nullptr) watch_ctx_->TryCancel();
  }
  if (watcher_.joinable()) watcher_.join();
  if (reloader_.joinable()) reloader_.join();
}

int StandbyRefresher::reloads() const {
  absl::MutexLock l(&mu_);
  return reloads_;
}

void StandbyRefresher::MarkDirty() {
  absl::MutexLock l(&mu_);
  dirty_ = true;
}

void StandbyRefresher::WatchLoop() {
  const std::string from = layout_.prefix() + "/";
  while (true) {
    grpc::ClientContext ctx;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
      watch_ctx_ = &ctx;
    }
    auto stream = client_->watch()->Watch(&ctx);
    etcdserverpb::WatchRequest req;
    req.mutable_create_request()->set_key(from);
    req.mutable_create_request()->set_range_end(EtcdLayout::RangeEnd(from));
    if (stream->Write(req)) {
      etcdserverpb::WatchResponse resp;
      while (stream->Read(&resp)) {
        if (resp.canceled() || resp.compact_revision() != 0) break;
        // The creation answer too: what changed before the watch began is read now.
        MarkDirty();
      }
    }
    {
      absl::MutexLock l(&mu_);
      watch_ctx_ = nullptr;
    }
    ctx.TryCancel();
    stream->Finish().IgnoreError();
    absl::MutexLock l(&mu_);
    // etcd unreachable or the stream cut: try again shortly.
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(500));
  }
}

void StandbyRefresher::ReloadLoop() {
  while (true) {
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &StandbyRefresher::StoppingOrDirty));
      if (stopping_) return;
      dirty_ = false;
    }
    if (absl::Status s = core_->ReloadFromStore(); !s.ok()) {
      spdlog::warn("standby: reloading the model from etcd: {}", s.ToString());
      MarkDirty();  // try again after the interval
    } else {
      absl::MutexLock l(&mu_);
      ++reloads_;
    }
    absl::MutexLock l(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), min_interval_);
  }
}

}  // namespace miroir::coordinator
