#include "coordinator/cluster_check.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/reshard_names.h"
#include "coordinator/cluster_state.h"
#include "coordinator/reshard_machine.h"

namespace miroir::coordinator {
namespace {

constexpr const char* kError = "error";
constexpr const char* kWarning = "warning";

std::string NodeStatusWord(v1::NodeStatus s) {
  std::string name = v1::NodeStatus_Name(s);
  if (name.rfind("NODE_", 0) == 0) name = name.substr(5);
  return absl::AsciiStrToLower(name);
}

bool MoveOver(v1::MoveState s) {
  return s == v1::MOVE_DONE || s == v1::MOVE_FAILED || s == v1::MOVE_ABORTED;
}

bool ReshardOver(v1::ReshardState state) {
  return ReshardMachine::IsTerminal(state) || state == v1::RESHARD_FAILED;
}

// The subject a plan acts on: a later done plan of the same kind and subject
// supersedes a failed one (the operator retried it).
std::string PlanSubject(const v1::Plan& p) {
  return absl::StrCat(p.kind(), "/", p.node_id(), "/", p.group());
}

class Findings {
 public:
  void Add(const char* severity, std::string check, std::string subject, std::string message) {
    v1::CheckFinding f;
    f.set_severity(severity);
    f.set_check(std::move(check));
    f.set_subject(std::move(subject));
    f.set_message(std::move(message));
    (severity == std::string(kError) ? errors_ : warnings_).push_back(std::move(f));
  }
  void MoveInto(v1::CheckClusterResponse* resp) {
    for (auto& f : errors_) *resp->add_findings() = std::move(f);
    for (auto& f : warnings_) *resp->add_findings() = std::move(f);
    resp->set_healthy(errors_.empty());
  }

 private:
  std::vector<v1::CheckFinding> errors_, warnings_;
};

void CheckWorkers(const ClusterCheckInput& in, Findings* out) {
  if (in.workers.empty()) {
    out->Add(kError, "workers", "-",
             "no live worker: nothing serves writes and no store node is probed");
  }
  for (const auto& w : in.workers) {
    if (w.acked_epoch < in.epoch) {
      out->Add(kError, "worker_epoch", w.id,
               absl::StrCat("worker ", w.id, " (", w.address, ") acked epoch ", w.acked_epoch,
                            ", current is ", in.epoch));
    }
  }
}

void CheckNodes(const ClusterCheckInput& in, v1::CheckClusterResponse* resp, Findings* out) {
  std::set<std::string> in_unended_plan, unended_groups;
  for (const auto& p : in.plans) {
    if (PlanEnded(p.state())) continue;
    in_unended_plan.insert(p.node_id());
    unended_groups.insert(p.group());
    for (const auto& m : p.moves()) {
      in_unended_plan.insert(m.old_owners().begin(), m.old_owners().end());
      in_unended_plan.insert(m.new_owners().begin(), m.new_owners().end());
    }
  }
  for (const auto& n : in.nodes) {
    if (n.status() == v1::NODE_REMOVED) continue;
    v1::NodeCheck* nc = resp->add_nodes();
    nc->set_node(n.id());
    nc->set_group(n.group());
    nc->set_address(n.address());
    nc->set_status(NodeStatusWord(n.status()));
    nc->set_reachable("unknown");
    nc->set_report_age_ms(-1);
    auto h = in.health.find(n.id());
    if (h != in.health.end()) {
      nc->set_reachable(h->second.reachable ? "yes" : "no");
      nc->set_report_age_ms(std::max<int64_t>(0, in.now_ms - h->second.reported_ms));
      nc->mutable_store_config()->insert(h->second.store_config.begin(),
                                         h->second.store_config.end());
    }
    auto passes = in.pending_passes.find(n.id());
    if (passes != in.pending_passes.end() && passes->second > 0) {
      out->Add(kError, "recovery_passes", n.id(),
               absl::StrCat("node ", n.id(), " has ", passes->second,
                            " pending recovery pass(es): it missed writes not yet repaired"));
    }
    if (n.status() == v1::NODE_FAILED) {
      out->Add(
          kError, "node_failed", n.id(),
          absl::StrCat("node ", n.id(), " (", n.address(),
                       ") is marked failed: restore RF with `miroir-ctl plan restore --id ", n.id(),
                       "` or bring it back with `miroir-ctl plan rejoin --id ", n.id(), "`"));
      continue;  // its store is not part of any write set: not judged
    }
    if ((n.status() == v1::NODE_JOINING || n.status() == v1::NODE_LEAVING) &&
        !in_unended_plan.count(n.id()) && !unended_groups.count(n.group())) {
      out->Add(kError, "node_status", n.id(),
               absl::StrCat("node ", n.id(), " is ", NodeStatusWord(n.status()),
                            " but no unfinished plan moves it (left behind by an ended plan)"));
    }
    if (h == in.health.end()) {
      out->Add(
          kError, "node_report", n.id(),
          absl::StrCat("node ", n.id(), " (", n.address(), "): no worker has reported on it yet"));
      continue;
    }
    const NodeHealth& health = h->second;
    if (in.now_ms - health.reported_ms > in.report_stale_ms) {
      out->Add(kError, "node_report", n.id(),
               absl::StrCat("node ", n.id(), " (", n.address(), "): last report ",
                            (in.now_ms - health.reported_ms) / 1000, " s ago (stale)"));
    }
    if (!health.reachable) {
      out->Add(kError, "node_reachable", n.id(),
               absl::StrCat("node ", n.id(), " (", n.address(),
                            ") is unreachable from the workers (last probe failed)"));
      continue;
    }
    if (health.store_config.empty()) {
      out->Add(kWarning, "store_config", n.id(),
               absl::StrCat("node ", n.id(), " (", n.store(),
                            "): durability settings not read (store exposes none, or the worker "
                            "predates the check)"));
      continue;
    }
    for (const auto& [key, want] : RequiredDurabilityConfig()) {
      auto got = health.store_config.find(key);
      const std::string have = got == health.store_config.end() ? "<unset>" : got->second;
      if (have != want) {
        out->Add(kError, "store_config", n.id(),
                 absl::StrCat("node ", n.id(), " (", n.address(), "): ", key, " is '", have,
                              "', must be '", want, "' (acknowledged writes rest on it)"));
      }
    }
  }
}

void CheckPlans(const ClusterCheckInput& in, Findings* out) {
  std::map<std::string, uint64_t> last_done;  // subject -> newest done plan id
  for (const auto& p : in.plans) {
    if (p.state() == v1::PLAN_DONE) {
      last_done[PlanSubject(p)] = std::max(last_done[PlanSubject(p)], p.id());
    }
  }
  for (const auto& p : in.plans) {
    const std::string id = absl::StrCat(p.id());
    if (p.state() == v1::PLAN_FAILED) {
      auto done = last_done.find(PlanSubject(p));
      if (done == last_done.end() || done->second < p.id()) {
        out->Add(kError, "plan_failed", id,
                 absl::StrCat("plan ", p.id(), " (", p.description(),
                              ") failed; see `miroir-ctl plan show ", p.id(), "`"));
      }
    }
    if (p.state() == v1::PLAN_PAUSED) {
      out->Add(kWarning, "plan_paused", id,
               absl::StrCat("plan ", p.id(), " (", p.description(), ") is paused"));
    }
    if (PlanEnded(p.state())) {
      for (const auto& m : p.moves()) {
        if (!MoveOver(m.state())) {
          out->Add(kError, "leftover_move", id,
                   absl::StrCat("plan ", p.id(), " ended ", PlanStateName(p.state()), " but move ",
                                m.id(), " (", m.index(), "/", m.shard(), ") is still ",
                                MoveStateName(m.state())));
        }
      }
    }
  }
}

void CheckReshards(const ClusterCheckInput& in, Findings* out) {
  std::map<std::string, uint64_t> last_done;  // index -> newest done reshard id
  std::set<std::string> running;              // indexes with an unfinished reshard
  for (const auto& r : in.reshards) {
    if (r.state() == v1::RESHARD_DONE)
      last_done[r.index()] = std::max(last_done[r.index()], r.id());
    if (!ReshardOver(r.state())) running.insert(r.index());
  }
  for (const auto& r : in.reshards) {
    if (r.state() != v1::RESHARD_FAILED) continue;
    auto done = last_done.find(r.index());
    if (done == last_done.end() || done->second < r.id()) {
      out->Add(kError, "reshard_failed", r.index(),
               absl::StrCat("reshard ", r.id(), " of index ", r.index(), " failed (from ",
                            ReshardStateName(r.failed_from()),
                            "); see `miroir-ctl reshard status --index ", r.index(), "`"));
    }
  }
  for (const auto& g : in.generations) {
    if ((g.role() == v1::GENERATION_SHADOW || g.role() == v1::GENERATION_RETAINED) &&
        !running.count(g.index())) {
      out->Add(kError, "leftover_generation", g.index(),
               absl::StrCat("generation ", g.generation(), " of index ", g.index(), " is ",
                            g.role() == v1::GENERATION_SHADOW ? "shadow" : "retained",
                            " but no reshard of the index is unfinished"));
    }
  }
}

}  // namespace

const std::map<std::string, std::string>& RequiredDurabilityConfig() {
  static const auto* kRequired = new std::map<std::string, std::string>{
      {"appendonly", "yes"}, {"appendfsync", "always"}, {"maxmemory-policy", "noeviction"}};
  return *kRequired;
}

v1::CheckClusterResponse JudgeCluster(const ClusterCheckInput& in) {
  v1::CheckClusterResponse resp;
  resp.set_epoch(in.epoch);
  resp.set_workers(static_cast<uint32_t>(in.workers.size()));
  Findings out;
  CheckWorkers(in, &out);
  CheckNodes(in, &resp, &out);
  CheckPlans(in, &out);
  CheckReshards(in, &out);
  out.MoveInto(&resp);
  return resp;
}

}  // namespace miroir::coordinator
