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
    etcdserverpb::WatchCreateRequest create;
    create.set_key(from);
    create.set_range_end(EtcdLayout::RangeEnd(from));
    // Every answer marks the model stale, the creation's too: what changed
    // before the watch began is read now.
    client_->Watch(&ctx, create, [this](const etcdserverpb::WatchResponse&) {
      MarkDirty();
      return true;
    });
    {
      absl::MutexLock l(&mu_);
      watch_ctx_ = nullptr;
    }
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
    }
    absl::MutexLock l(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), min_interval_);
  }
}

}  // namespace miroir::coordinator
