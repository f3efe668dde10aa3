#include "coordinator/anti_entropy_runner.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/duration.h"
#include "common/status_macros.h"
#include "coordinator/anti_entropy_scheduler.h"
#include "coordinator/coordinator.h"
#include "coordinator/node_rejoin.h"
#include "spdlog/spdlog.h"

namespace miroir::coordinator {
namespace {

constexpr size_t kKeptRuns = 50;

bool IsAePass(const TaskRecord& t) {
  return t.task.kind() == v1::TASK_AE_PASS && t.task.move_id() == 0;
}

// The status answer read from `s` (the caller holds the state's lock).
v1::AntiEntropyStatusResponse StatusOf(const ClusterState& s, const CoordinatorConfig& cfg,
                                       uint64_t run_id) {
  v1::AntiEntropyStatusResponse resp;
  resp.set_enabled(cfg.anti_entropy.enabled);
  resp.set_schedule(absl::StrCat("every ", miroir::FormatDuration(cfg.anti_entropy.schedule)));
  resp.set_next_scheduled_ms(cfg.anti_entropy.enabled ? s.ae_next_round_ms : 0);
  int listed = 0;
  for (auto it = s.ae_runs.rbegin(); it != s.ae_runs.rend(); ++it) {
    if (run_id != 0 && it->first != run_id) continue;
    if (++listed > 20) break;
    v1::AntiEntropyRun r = it->second;
    r.clear_cursor_index();
    r.clear_cursor_shard();
    r.clear_cursor_wrapped();
    *resp.add_runs() = r;
  }
  for (const auto& [key, p] : s.ae_passes) {
    if (run_id != 0 && p.run_id() != run_id) continue;
    *resp.add_passes() = p;
  }
  return resp;
}

}  // namespace

void AntiEntropyRunner::Tick() {
  const CoordinatorConfig& cfg = c_->config_;
  const int64_t now = c_->clock_->NowMs();
  const int64_t interval = absl::ToInt64Milliseconds(cfg.anti_entropy.schedule);
  uint64_t scanned = 0, mismatches = 0, repaired = 0, failed = 0;
  auto st = c_->Mutate([&](const ClusterState& s, Change* ch) -> absl::Status {
    scanned = mismatches = repaired = failed = 0;
    std::map<uint64_t, v1::AntiEntropyRun> runs;  // changed runs
    auto run_of = [&](uint64_t id) -> v1::AntiEntropyRun* {
      auto it = runs.find(id);
      if (it != runs.end()) return &it->second;
      auto old = s.ae_runs.find(id);
      if (old == s.ae_runs.end()) return nullptr;
      return &(runs[id] = old->second);
    };
    std::map<uint64_t, int> inflight_by_run;
    int inflight = 0;
    // 1. Finished passes become the shards' last passes.
    for (const auto& [id, t] : s.tasks) {
      if (!IsAePass(t)) continue;
      const bool ok = t.status == TaskRecord::Status::kDone;
      const bool gave_up = t.FailedForGood(cfg.migration.task_retries);
      if (!ok && !gave_up) {
        ++inflight;
        ++inflight_by_run[t.task.ae_run_id()];
        continue;
      }
      v1::AntiEntropyRun scratch;
      v1::AntiEntropyRun* run = run_of(t.task.ae_run_id());
      v1::ShardPass p = FoldPass(t.task, t.result, ok ? "" : t.error, now, run ? run : &scratch);
      ch->ae_passes[AePassKey(p.index(), p.generation(), p.shard())] = p;
      ch->deleted_tasks.insert(id);
      if (ok) {
        RecordSyncPoints(s, t.task, t.result, ch);
        ++scanned;
        mismatches += p.mismatches();
        repaired += p.repaired();
      } else {
        ++failed;
      }
    }
    // 2. The scheduled round, when due and the previous one has finished.
    if (cfg.anti_entropy.enabled) {
      bool scheduled_running = false;
      for (const auto& [id, r] : s.ae_runs) {
        scheduled_running = scheduled_running || (r.scheduled() && r.finished_ms() == 0);
      }
      if (s.ae_next_round_ms == 0 || s.ae_next_round_ms > now + interval) {
        // First start, or the schedule was shortened since the round was planned.
        ch->ae_next_round_ms = now + interval;
      } else if (now >= s.ae_next_round_ms && !scheduled_running) {
        v1::AntiEntropyRun r;
        r.set_id(ch->AllocId(s));
        r.set_scheduled(true);
        r.set_repair(cfg.anti_entropy.auto_repair);
        r.set_started_ms(now);
        r.set_cursor_index(s.ae_rotation_index);
        r.set_cursor_shard(s.ae_rotation_shard);
        r.set_total(static_cast<uint32_t>(
            std::min<size_t>(cfg.anti_entropy.shards_per_pass, RunScope(s, r).size())));
        runs[r.id()] = r;
        ch->ae_next_round_ms = now + interval;
      }
    }
    // 3. Issue passes of unfinished runs, oldest first.
    std::vector<uint64_t> open;
    for (const auto& [id, r] : s.ae_runs) {
      if (r.finished_ms() == 0) open.push_back(id);
    }
    for (const auto& [id, r] : runs) {
      if (r.finished_ms() == 0 && !s.ae_runs.count(id)) open.push_back(id);
    }
    std::sort(open.begin(), open.end());
    for (uint64_t id : open) {
      v1::AntiEntropyRun* run = run_of(id);
      if (run == nullptr) run = &runs[id];
      while (inflight < static_cast<int>(cfg.anti_entropy.max_read_concurrency)) {
        const v1::AntiEntropyRun before = *run;
        std::vector<AeShard> next = NextShards(s, run, 1);
        if (next.empty()) {
          *run = before;
          break;
        }
        const AeShard& sh = next[0];
        if (std::string why = BusyReason(s, sh); !why.empty()) {
          v1::ShardPass p;
          p.set_index(sh.index);
          p.set_generation(sh.generation);
          p.set_shard(sh.shard);
          p.set_run_id(id);
          p.set_finished_ms(now);
          p.set_skipped(true);
          p.set_error(absl::StrCat("skipped: ", why, "; retried in a later round"));
          ch->ae_passes[AePassKey(sh.index, sh.generation, sh.shard)] = p;
          run->set_skipped(run->skipped() + 1);
          continue;
        }
        v1::Task t = MakePassTask(s, sh, *run, cfg.anti_entropy, cfg.max_clock_drift, now);
        t.set_id(ch->AllocId(s));
        t.set_epoch(s.epoch);
        ch->tasks[t.id()] = t;
        ++inflight;
        ++inflight_by_run[id];
      }
      if (run->issued() >= run->total() && inflight_by_run[id] == 0) {
        run->set_finished_ms(now);
        if (run->scheduled()) ch->ae_rotation = {run->cursor_index(), run->cursor_shard()};
        spdlog::info(
            "anti-entropy run {} finished: {} shards passed, {} failed, {} skipped, "
            "{} mismatches, {} repaired",
            id, run->done(), run->failed(), run->skipped(), run->mismatches(), run->repaired());
      }
    }
    // Drop runs that changed nothing (NextShards may have been tried and undone).
    for (auto it = runs.begin(); it != runs.end();) {
      auto old = s.ae_runs.find(it->first);
      if (old != s.ae_runs.end() &&
          old->second.SerializeAsString() == it->second.SerializeAsString()) {
        it = runs.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [id, r] : runs) ch->ae_runs[id] = r;
    // Keep the newest runs only.
    if (s.ae_runs.size() + runs.size() > kKeptRuns) {
      size_t extra = s.ae_runs.size() + runs.size() - kKeptRuns;
      for (const auto& [id, r] : s.ae_runs) {
        if (extra == 0) break;
        if (r.finished_ms() == 0 || runs.count(id)) continue;
        ch->deleted_ae_runs.insert(id);
        --extra;
      }
    }
    return absl::OkStatus();
  });
  if (!st.ok()) {
    spdlog::error("anti-entropy: {}", std::string(st.status().message()));
    return;
  }
  counters_.shards_scanned += scanned;
  counters_.mismatches += mismatches;
  counters_.repaired += repaired;
  counters_.failed += failed;
}

absl::StatusOr<v1::AntiEntropyRun> AntiEntropyRunner::Start(const v1::AntiEntropyRunRequest& req) {
  if (req.has_shards() && req.index().empty()) {
    return absl::InvalidArgumentError("shards: a shard range needs an index");
  }
  if (req.has_shards() && req.shard_from() > req.shard_to()) {
    return absl::InvalidArgumentError(
        absl::StrCat("shards: range ", req.shard_from(), "-", req.shard_to(), " is reversed"));
  }
  const int64_t now = c_->clock_->NowMs();
  v1::AntiEntropyRun created;
  MIROIR_RETURN_IF_ERROR(
      c_->Mutate([&](const ClusterState& s, Change* ch) -> absl::Status {
          v1::AntiEntropyRun r;
          if (!req.index().empty()) {
            const v1::Index* ix = s.FindIndex(req.index());
            if (ix == nullptr) {
              return absl::NotFoundError(absl::StrCat("index: unknown index '", req.index(), "'"));
            }
            r.set_index(ix->name());
            if (req.has_shards() && req.shard_to() >= ix->shards()) {
              return absl::InvalidArgumentError(absl::StrCat("shards: ", req.shard_to(),
                                                             " is outside 0..", ix->shards() - 1,
                                                             " of index ", ix->name()));
            }
          }
          r.set_id(ch->AllocId(s));
          r.set_scheduled(false);
          // `auto_repair: false` makes every pass report-only, the operator's too.
          r.set_repair(!req.report_only() && c_->config_.anti_entropy.auto_repair);
          r.set_has_shards(req.has_shards());
          r.set_shard_from(req.shard_from());
          r.set_shard_to(req.shard_to());
          r.set_started_ms(now);
          r.set_total(static_cast<uint32_t>(RunScope(s, r).size()));
          ch->ae_runs[r.id()] = r;
          created = r;
          return absl::OkStatus();
        }).status());
  spdlog::info("anti-entropy run {} started by an operator: {} shards{}", created.id(),
               created.total(), created.repair() ? "" : " (report only)");
  c_->Wake();
  return created;
}

v1::AntiEntropyStatusResponse AntiEntropyRunner::Status(uint64_t run_id) {
  const CoordinatorConfig cfg = c_->config();  // a gRPC thread: a copy (live keys may change)
  absl::ReaderMutexLock l(&c_->mu_);
  return StatusOf(c_->state_, cfg, run_id);
}

}  // namespace miroir::coordinator
