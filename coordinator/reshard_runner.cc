#include "coordinator/reshard_runner.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/reshard_names.h"
#include "common/status_macros.h"
#include "coordinator/coordinator.h"
#include "coordinator/move_gates.h"
#include "coordinator/move_machine.h"
#include "coordinator/plan_runner.h"
#include "coordinator/reshard_gates.h"
#include "coordinator/reshard_machine.h"
#include "coordinator/reshard_stepper.h"
#include "coordinator/schedule_window.h"
#include "spdlog/spdlog.h"

namespace miroir::coordinator {
namespace {

constexpr uint32_t kMaxShards = 65536;
constexpr double kAssumedDocsPerS = 10000;  // dry run of an unthrottled reshard

// The newest reshard of `index` (nullptr when none).
const v1::ReshardRecord* Newest(const ClusterState& s, const std::string& index) {
  const v1::ReshardRecord* out = nullptr;
  for (const auto& [id, r] : s.reshards) {
    if (r.index() == index) out = &r;
  }
  return out;
}

// Documents and bytes of one generation (one replica), from the node reports:
// per shard the largest count any owner reported.
std::pair<uint64_t, uint64_t> GenerationSize(const v1::GenerationRoute& g,
                                             const std::map<std::string, NodeHealth>& health,
                                             bool* known) {
  uint64_t docs = 0, bytes = 0;
  *known = false;
  for (const auto& route : g.routes()) {
    uint64_t d = 0, b = 0;
    for (const auto& o : route.owners()) {
      for (const auto& n : o.nodes()) {
        auto h = health.find(n);
        if (h == health.end()) continue;
        auto it = h->second.shards.find({g.index(), g.generation(), route.shard()});
        if (it == h->second.shards.end()) continue;
        *known = true;
        d = std::max(d, it->second.first);
        b = std::max(b, it->second.second);
      }
    }
    docs += d;
    bytes += b;
  }
  return {docs, bytes};
}

// The newest reshard of `index` and its live generation's size, read from `s`
// and `health` (the caller holds the state's lock). NOT_FOUND naming the index.
absl::Status StatusOf(const ClusterState& s, const std::map<std::string, NodeHealth>& health,
                      const std::string& index, v1::ReshardStatusResponse* resp) {
  const v1::Index* ix = s.FindIndex(index);
  if (ix == nullptr) return absl::NotFoundError(absl::StrCat("index: unknown index '", index, "'"));
  const v1::ReshardRecord* r = Newest(s, ix->name());
  if (r == nullptr) {
    return absl::NotFoundError(absl::StrCat("index: no reshard of index '", ix->name(), "'"));
  }
  *resp->mutable_reshard() = *r;
  auto live = s.generations.find(r->old_generation());
  if (live != s.generations.end()) {
    bool known = false;
    auto [docs, bytes] = GenerationSize(live->second, health, &known);
    resp->mutable_estimate()->set_documents(docs);
    resp->mutable_estimate()->set_bytes(bytes);
    resp->mutable_estimate()->set_stats_known(known);
  }
  return absl::OkStatus();
}

}  // namespace

void ReshardRunner::Tick() {
  const StepInput in = c_->StepInputNow();
  StepOutput out;
  std::vector<PlanRunner::Lease> leases;
  auto st = c_->Mutate([&](const ClusterState& s, Change* ch) {
    out = ReshardStepper(c_->config_).Step(s, in, ch);
    leases = c_->runner_->LeaseNewCutoverTasks(s, ch);
    return absl::OkStatus();
  });
  LogStepOutput(out, st.status(), "reshard runner");
  if (!st.ok()) return;
  c_->runner_->SendLeases(leases);
  backfilled_.fetch_add(out.documents_backfilled);
}

absl::StatusOr<v1::ReshardStartResponse> ReshardRunner::Start(const v1::ReshardStartRequest& req) {
  const CoordinatorConfig& cfg = c_->config_;
  if (req.index().empty()) return absl::InvalidArgumentError("index: must not be empty");
  if (req.new_shards() == 0) return absl::InvalidArgumentError("new_shards: must be >= 1");
  if (req.new_shards() > kMaxShards) {
    return absl::InvalidArgumentError(
        absl::StrCat("new_shards: ", req.new_shards(), " is over the limit of ", kMaxShards));
  }
  if (!req.schedule_window().empty()) {
    if (auto w = PlanWindows(req.schedule_window(), cfg); !w.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("schedule_window: ", w.status().message()));
    }
  }
  const int64_t now = c_->clock_->NowMs();
  v1::ReshardStartResponse resp;
  std::vector<std::string> warnings;
  MIROIR_RETURN_IF_ERROR(
      c_->Mutate([&](const ClusterState& s,
                     Change* ch) ABSL_SHARED_LOCKS_REQUIRED(c_->mu_) -> absl::Status {
          warnings.clear();
          const v1::Index* ix = s.FindIndex(req.index());
          if (ix == nullptr) {
            return absl::NotFoundError(absl::StrCat("index: unknown index '", req.index(), "'"));
          }
          std::vector<v1::ReshardRecord> plans;
          for (const auto& [id, r] : s.reshards) plans.push_back(r);
          bool move_active = false;
          for (const auto& [id, m] : s.moves) {
            move_active =
                move_active || (m.index() == ix->name() && !MoveMachine::IsTerminal(m.state()));
          }
          ReshardStartRequest gate{ix->name(), ix->shards(), req.new_shards(), req.force()};
          // The window gate: an explicit window replaces resharding.allowed_windows.
          CoordinatorConfig gate_cfg = cfg;
          if (!req.schedule_window().empty()) {
            gate_cfg.resharding.allowed_windows = {req.schedule_window()};
          }
          std::vector<std::string> gate_warnings;
          if (auto g = CheckReshardStart(gate, gate_cfg, plans, move_active, now, &gate_warnings);
              !g.ok()) {
            if (g.code() == absl::StatusCode::kInvalidArgument &&
                absl::StartsWith(g.message(), "shards:")) {
              return absl::InvalidArgumentError(absl::StrCat("new_shards", g.message().substr(6)));
            }
            return g;
          }
          warnings = gate_warnings;
          // The estimate (DESIGN §7).
          const v1::GenerationRoute& live = s.generations.at(ix->live_generation());
          bool known = false;
          auto [docs, bytes] = GenerationSize(live, c_->health_, &known);
          v1::ReshardEstimate* est = resp.mutable_estimate();
          est->set_old_shards(ix->shards());
          est->set_new_shards(req.new_shards());
          est->set_documents(docs);
          est->set_bytes(bytes);
          est->set_stats_known(known);
          est->set_rf(ix->rf());
          est->set_groups(static_cast<uint32_t>(s.group_order.size()));
          const uint64_t throttle = req.throttle_docs_per_s()
                                        ? req.throttle_docs_per_s()
                                        : cfg.resharding.throttle_docs_per_sec;
          double dps = static_cast<double>(throttle);
          if (throttle == 0) {
            dps = kAssumedDocsPerS;
            warnings.push_back(absl::StrCat("unthrottled: the estimate assumes ",
                                            static_cast<uint64_t>(kAssumedDocsPerS),
                                            " documents/s"));
          }
          if (!known) warnings.push_back("no node stats reported yet: documents and bytes unknown");
          ReshardEstimateInput in{docs, bytes, ix->rf(), std::max<uint32_t>(1, est->groups()),
                                  dps,  0};
          if (auto e = EstimateReshard(in); e.ok()) {
            est->set_storage_peak_bytes(e->storage_peak_bytes);
            est->set_peak_node_writes_per_s(e->peak_node_writes_per_s);
            est->set_duration_s(e->duration_s);
          }
          est->set_backfill_docs_per_s(dps);
          if (req.dry_run()) return absl::OkStatus();
          v1::ReshardRecord r;
          r.set_id(ch->AllocId(s));
          r.set_index(ix->name());
          r.set_old_shards(ix->shards());
          r.set_new_shards(req.new_shards());
          r.set_old_generation(ix->live_generation());
          r.set_new_generation(ch->AllocId(s));
          r.set_state(v1::RESHARD_SHADOW);
          r.set_failed_from(v1::RESHARD_SHADOW);
          r.set_state_since_ms(now);
          r.set_started_ms(now);
          r.set_force(req.force());
          for (const auto& w : gate_warnings) r.add_warnings(w);
          r.set_throttle_docs_per_s(throttle);
          r.set_schedule_window(req.schedule_window());
          v1::Event e;
          e.set_time_ms(now);
          e.set_plan_id(r.id());
          e.set_from("");
          e.set_to(ReshardStateName(v1::RESHARD_SHADOW));
          e.set_reason(absl::StrCat("reshard of ", ix->name(), " from ", ix->shards(), " to ",
                                    req.new_shards(), " shards started",
                                    gate_warnings.empty() ? "" : "; ",
                                    absl::StrJoin(gate_warnings, "; ")));
          ch->events.push_back(e);
          ch->reshards[r.id()] = r;
          *resp.mutable_reshard() = r;
          return absl::OkStatus();
        }).status());
  for (const auto& w : warnings) {
    resp.add_warnings(w);
    if (!req.dry_run()) spdlog::warn("reshard of {}: {}", req.index(), w);
  }
  if (!req.dry_run()) {
    spdlog::info("reshard {} of {} started: {} -> {} shards", resp.reshard().id(),
                 resp.reshard().index(), resp.reshard().old_shards(), resp.reshard().new_shards());
    c_->Wake();
  }
  return resp;
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Status(const std::string& index) {
  v1::ReshardStatusResponse resp;
  {
    absl::ReaderMutexLock l(&c_->mu_);
    MIROIR_RETURN_IF_ERROR(StatusOf(c_->state_, c_->health_, index, &resp));
  }
  const uint64_t id = resp.reshard().id();
  // Internal bookkeeping stays out of the answer.
  for (auto& sh : *resp.mutable_reshard()->mutable_dst_positions()) sh.clear_watermarks();
  auto events = c_->store_->PlanEvents(id);
  if (events.ok()) {
    for (const auto& bytes : *events) resp.add_events()->ParseFromString(bytes);
  }
  return resp;
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Operate(const std::string& index,
                                                                 const RecordFn& fn) {
  const int64_t now = c_->clock_->NowMs();
  MIROIR_RETURN_IF_ERROR(c_->Mutate([&](const ClusterState& s, Change* ch) -> absl::Status {
                             const v1::Index* ix = s.FindIndex(index);
                             if (ix == nullptr) {
                               return absl::NotFoundError(
                                   absl::StrCat("index: unknown index '", index, "'"));
                             }
                             const v1::ReshardRecord* cur = Newest(s, ix->name());
                             if (cur == nullptr) {
                               return absl::NotFoundError(
                                   absl::StrCat("index: no reshard of index '", ix->name(), "'"));
                             }
                             v1::ReshardRecord r = *cur;
                             const v1::ReshardState before = r.state();
                             MIROIR_RETURN_IF_ERROR(fn(&r, now));
                             // A state change, or an operator call that notes why (a forced
                             // cutover), is an event.
                             if (r.state() != before || r.message() != cur->message()) {
                               v1::Event e;
                               e.set_time_ms(now);
                               e.set_plan_id(r.id());
                               e.set_from(ReshardStateName(before));
                               e.set_to(ReshardStateName(r.state()));
                               e.set_reason(r.message());
                               ch->events.push_back(e);
                             }
                             ch->reshards[r.id()] = r;
                             return absl::OkStatus();
                           }).status());
  c_->Wake();
  return Status(index);
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Abort(const std::string& index) {
  return Operate(index, [](v1::ReshardRecord* r, int64_t now) -> absl::Status {
    if (r->state() == v1::RESHARD_ABORTING) return absl::OkStatus();
    if (!ReshardMachine::CanAbort(*r)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "reshard ", r->id(), " of ", r->index(), " is in state ", ReshardStateName(r->state()),
          ReshardMachine::IsSwapped(*r)
              ? absl::StrCat("; after the swap use `miroir-ctl reshard rollback --index ",
                             r->index(), "`")
              : "",
          ": abort is possible only before the swap"));
    }
    auto e = ReshardMachine::Transition(r, v1::RESHARD_ABORTING, "aborted by the operator", now, 0);
    if (!e.ok()) return e.status();
    MIROIR_RETURN_IF_ERROR(ReshardMachine::SetStep(r, v1::RESHARD_STEP_UNROUTE));
    r->set_message("aborted by the operator");
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Rollback(const std::string& index) {
  return Operate(index, [](v1::ReshardRecord* r, int64_t now) -> absl::Status {
    if (r->state() == v1::RESHARD_ROLLING_BACK) return absl::OkStatus();
    if (!ReshardMachine::CanRollback(*r)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "reshard ", r->id(), " of ", r->index(), " is in state ", ReshardStateName(r->state()),
          ReshardMachine::CanAbort(*r)
              ? absl::StrCat("; before the swap use `miroir-ctl reshard abort --index ", r->index(),
                             "`")
              : "",
          ": rollback is possible only in retention"));
    }
    auto e =
        ReshardMachine::Transition(r, v1::RESHARD_ROLLING_BACK, "rollback by the operator", now, 0);
    if (!e.ok()) return e.status();
    MIROIR_RETURN_IF_ERROR(ReshardMachine::SetStep(r, v1::RESHARD_STEP_START));
    r->set_message("rollback by the operator");
    r->set_stall_retries(0);
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Complete(const std::string& index) {
  return Operate(index, [](v1::ReshardRecord* r, int64_t) -> absl::Status {
    if (!ReshardMachine::CanComplete(*r)) {
      return absl::FailedPreconditionError(
          absl::StrCat("reshard ", r->id(), " of ", r->index(), " is in state ",
                       ReshardStateName(r->state()), ": complete is possible only in retention"));
    }
    r->set_complete_requested(true);
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ReshardStatusResponse> ReshardRunner::Cutover(const std::string& index,
                                                                 bool force) {
  if (!force) {
    return absl::InvalidArgumentError(
        "force: a swap before the catch-up converged must be forced (--force); the reshard "
        "swaps on its own once it converges");
  }
  const absl::Duration stall = c_->config_.migration.max_write_stall;
  return Operate(index, [stall](v1::ReshardRecord* r, int64_t) -> absl::Status {
    if (r->state() != v1::RESHARD_CATCHING_UP && r->state() != v1::RESHARD_VERIFY) {
      return absl::FailedPreconditionError(absl::StrCat(
          "reshard ", r->id(), " of ", r->index(), " is in state ", ReshardStateName(r->state()),
          ": a cutover is forced only before the swap (catching_up, verify)"));
    }
    if (r->force_cutover()) return absl::OkStatus();
    r->set_force_cutover(true);
    r->set_message(absl::StrCat("cutover forced by the operator (", r->remaining(),
                                " documents in the last round): the swap follows the round in "
                                "flight; max_write_stall ",
                                absl::FormatDuration(stall), " still applies"));
    return absl::OkStatus();
  });
}

uint64_t ReshardRunner::InProgress() const {
  absl::ReaderMutexLock l(&c_->mu_);
  uint64_t n = 0;
  for (const auto& [id, r] : c_->state_.reshards)
    n += !ReshardMachine::Ended(r) && r.state() != v1::RESHARD_FAILED;
  return n;
}

int ReshardRunner::Phase() const {
  absl::ReaderMutexLock l(&c_->mu_);
  int phase = 0;
  for (const auto& [id, r] : c_->state_.reshards) {
    if (!ReshardMachine::Ended(r)) phase = ReshardPhase(r.state());
  }
  return phase;
}

}  // namespace miroir::coordinator
