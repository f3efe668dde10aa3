// Coordinator::Verify: one VERIFY task per shard of an index's live generation,
// leased to live workers by the runner, aggregated into per-shard verdicts.
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/coordinator.h"

namespace miroir::coordinator {

absl::StatusOr<v1::VerifyResponse> Coordinator::Verify(const std::string& index,
                                                       absl::Duration timeout) {
  if (index.empty()) return absl::InvalidArgumentError("index: index name is required");
  {
    absl::ReaderMutexLock l(&mu_);
    if (!state_.FindIndex(index)) {
      return absl::NotFoundError(absl::StrCat("index: unknown index '", index, "'"));
    }
  }
  if (registry_.Live().empty()) {
    return absl::UnavailableError("verify needs a live worker to read the nodes; none is connected");
  }
  std::vector<uint64_t> ids;
  MIROIR_RETURN_IF_ERROR(
      Mutate([&](const ClusterState& s, Change* c) -> absl::Status {
        const v1::Index* ix = s.FindIndex(index);
        const v1::GenerationRoute& gen = s.generations.at(ix->live_generation());
        std::set<std::string> failed = s.FailedNodes();
        for (const auto& route : gen.routes()) {
          std::vector<std::string> sources;
          for (const auto& o : route.owners()) {
            for (const auto& n : o.nodes()) {
              if (!failed.count(n)) sources.push_back(n);
            }
          }
          v1::Task t = NewShardTask(s, c, v1::TASK_VERIFY, gen, route.shard(), s.epoch, sources, {},
                                    static_cast<uint32_t>(config_.migration.backfill_batch_size));
          c->tasks[t.id()] = t;
          ids.push_back(t.id());
        }
        return absl::OkStatus();
      })
          .status());
  {
    absl::MutexLock l(&run_mu_);
    wake_ = true;
  }
  const absl::Time deadline = absl::Now() + timeout;
  v1::VerifyResponse resp;
  bool finished = false;
  while (!finished) {
    {
      absl::ReaderMutexLock l(&mu_);
      finished = true;
      for (uint64_t id : ids) {
        auto it = state_.tasks.find(id);
        if (it == state_.tasks.end()) continue;
        const auto st = it->second.status;
        const bool failed_for_good =
            st == TaskRecord::Status::kFailed &&
            (!it->second.retryable || it->second.failures > config_.migration.task_retries);
        if (st != TaskRecord::Status::kDone && !failed_for_good) finished = false;
      }
      if (finished) {
        for (uint64_t id : ids) {
          auto it = state_.tasks.find(id);
          if (it == state_.tasks.end()) continue;
          const TaskRecord& t = it->second;
          v1::ShardVerdict* v = resp.add_shards();
          v->set_shard(t.task.shard());
          bool consistent = t.status == TaskRecord::Status::kDone && t.result.mismatches() == 0;
          for (const auto& d : t.result.digests()) {
            v->add_nodes(d.node());
            v->add_documents(d.documents());
            v->add_digests(d.digest());
            if (d.digest() != t.result.digests(0).digest() ||
                d.documents() != t.result.digests(0).documents()) {
              consistent = false;
            }
          }
          if (t.result.digests().empty()) {
            for (const auto& n : t.task.sources()) v->add_nodes(n);
          }
          v->set_consistent(consistent);
          if (!consistent) resp.set_divergent(resp.divergent() + 1);
        }
      }
    }
    if (!finished) {
      if (absl::Now() > deadline) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  auto cleanup = Mutate([&](const ClusterState& s, Change* c) {
    for (uint64_t id : ids) {
      if (s.tasks.count(id)) c->deleted_tasks.insert(id);
    }
    return absl::OkStatus();
  });
  if (!finished) {
    return absl::UnavailableError("verify did not finish in time (workers busy or unreachable)");
  }
  if (!cleanup.ok()) return cleanup.status();
  return resp;
}

}  // namespace miroir::coordinator
