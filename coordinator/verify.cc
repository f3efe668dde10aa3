// Verify operations (docs/cli.md "Verify"): StartVerify creates one VERIFY task
// per shard of the index's live generation, tagged with the operation's id, and
// persists the operation; the runner leases the tasks and TickVerifies settles
// them into verdicts (coordinator/verify_ops.h) in the same commit that deletes
// them. The old one-call Verify is StartVerify plus a wait.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/coordinator.h"
#include "coordinator/fleet_spec.h"
#include "coordinator/verify_ops.h"
#include "spdlog/spdlog.h"

namespace miroir::coordinator {
namespace {

constexpr size_t kKeptVerifies = 50;  // newest operations kept (ended ones pruned)
constexpr absl::Duration kDefaultVerifyTimeout = absl::Hours(1);

}  // namespace

absl::StatusOr<v1::VerifyOperation> Coordinator::StartVerify(const std::string& index,
                                                             absl::Duration timeout) {
  if (index.empty()) return absl::InvalidArgumentError("index: index name is required");
  if (timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout_ms: must not be negative");
  }
  if (timeout == absl::ZeroDuration()) timeout = kDefaultVerifyTimeout;
  {
    absl::ReaderMutexLock l(&mu_);
    if (!state_.FindIndex(index)) {
      return absl::NotFoundError(absl::StrCat("index: unknown index '", index, "'"));
    }
  }
  if (registry_.Live().empty()) {
    return absl::UnavailableError(
        "verify needs a live worker to read the nodes; none is connected");
  }
  const int64_t now = clock_->NowMs();
  v1::VerifyOperation op;
  MIROIR_RETURN_IF_ERROR(
      Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
        const v1::Index* ix = s.FindIndex(index);
        if (ix == nullptr) {
          return absl::NotFoundError(absl::StrCat("index: unknown index '", index, "'"));
        }
        const v1::GenerationRoute& gen = s.generations.at(ix->live_generation());
        std::set<std::string> failed = s.FailedNodes();
        op = v1::VerifyOperation();
        op.set_id(c->AllocId(s));
        op.set_index(ix->name());
        op.set_generation(ix->live_generation());
        op.set_state(kVerifyRunning);
        op.set_started_ms(now);
        op.set_deadline_ms(now + absl::ToInt64Milliseconds(timeout));
        for (const auto& route : gen.routes()) {
          std::vector<std::string> sources;
          for (const auto& o : route.owners()) {
            for (const auto& n : o.nodes()) {
              if (!failed.count(n)) sources.push_back(n);
            }
          }
          v1::Task t = NewShardTask(s, c, v1::TASK_VERIFY, gen, route.shard(), s.epoch, sources, {},
                                    static_cast<uint32_t>(config_.migration.backfill_batch_size));
          t.set_verify_id(op.id());
          c->tasks[t.id()] = t;
          op.add_task_ids(t.id());
        }
        op.set_total(static_cast<uint32_t>(op.task_ids_size()));
        c->verifies[op.id()] = op;
        // Keep the newest operations only (never a running one).
        size_t extra =
            s.verifies.size() + 1 > kKeptVerifies ? s.verifies.size() + 1 - kKeptVerifies : 0;
        for (const auto& [id, v] : s.verifies) {
          if (extra == 0) break;
          if (v.state() == kVerifyRunning) continue;
          c->deleted_verifies.insert(id);
          --extra;
        }
        return absl::OkStatus();
      }).status());
  Wake();
  spdlog::info("verify {} of index {} (generation {}) started: {} shards", op.id(), op.index(),
               op.generation(), op.total());
  return op;
}

absl::StatusOr<v1::GetVerifyResponse> Coordinator::GetVerify(uint64_t id) {
  absl::ReaderMutexLock l(&mu_);
  v1::GetVerifyResponse resp;
  if (id != 0) {
    auto it = state_.verifies.find(id);
    if (it == state_.verifies.end()) {
      return absl::NotFoundError(absl::StrCat("id: unknown verify operation ", id));
    }
    *resp.add_operations() = it->second;
    return resp;
  }
  for (auto it = state_.verifies.rbegin(); it != state_.verifies.rend(); ++it) {
    if (resp.operations_size() >= 20) break;
    *resp.add_operations() = it->second;
  }
  return resp;
}

void Coordinator::TickVerifies() {
  {
    absl::ReaderMutexLock l(&mu_);
    bool running = false;
    for (const auto& [id, v] : state_.verifies) running |= v.state() == kVerifyRunning;
    if (!running) return;
  }
  const int64_t now = clock_->NowMs();
  auto st = Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
    for (const auto& [id, v] : s.verifies) {
      if (v.state() != kVerifyRunning) continue;
      v1::VerifyOperation op = v;
      const v1::Index* ix = s.FindIndex(op.index());
      const bool gen_exists = ix != nullptr && s.generations.count(op.generation()) > 0;
      std::vector<uint64_t> done =
          AdvanceVerify(&op, s.tasks, config_.migration.task_retries, now, gen_exists);
      if (op.SerializeAsString() == v.SerializeAsString()) continue;
      for (uint64_t t : done) c->deleted_tasks.insert(t);
      if (op.state() != kVerifyRunning) {
        spdlog::info("verify {} of index {} ended {}: {}/{} shards compared, {} divergent{}",
                     op.id(), op.index(), op.state(), op.total() - op.unfinished(), op.total(),
                     op.divergent(), op.message().empty() ? "" : "; " + op.message());
      }
      c->verifies[id] = std::move(op);
    }
    return absl::OkStatus();
  });
  if (!st.ok()) spdlog::warn("verify: {}", std::string(st.status().message()));
}

absl::StatusOr<v1::VerifyResponse> Coordinator::Verify(const std::string& index,
                                                       absl::Duration timeout) {
  MIROIR_ASSIGN_OR_RETURN(v1::VerifyOperation op,
                          StartVerify(index, std::max(timeout, absl::Milliseconds(1))));
  // The operation ends by its deadline (the call's): wait a little past it for
  // the runner to settle it.
  const absl::Time give_up = absl::Now() + timeout + absl::Seconds(2);
  while (true) {
    {
      absl::ReaderMutexLock l(&mu_);
      auto it = state_.verifies.find(op.id());
      if (it != state_.verifies.end()) op = it->second;
    }
    if (op.state() != kVerifyRunning || absl::Now() > give_up) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (op.state() == kVerifyDone) return VerifyResponseOf(op);
  return absl::UnavailableError(absl::StrCat("verify ", op.id(), " did not finish (", op.state(),
                                             op.message().empty() ? "" : ": ", op.message(),
                                             "); see `miroir-ctl verify status ", op.id(), "`"));
}

}  // namespace miroir::coordinator
