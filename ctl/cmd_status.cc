// `miroir-ctl status`: leader, epoch, nodes (with their health), plans, pending
// recovery passes, workers, and the versions of the coordinator and workers.
#include <iostream>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"
#include "ctl/plan_format.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;

struct StatusOptions {
  uint32_t recent_actions = 10;
};

std::string When(int64_t ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

// The control plane: the state backend, and on etcd every coordinator (which
// leads, its term) and each endpoint's health.
void PrintControlPlane(const miroir::v1::GetStatusResponse& resp) {
  if (resp.state_backend() != "etcd") return;
  std::cout << "\ncoordinators (etcd, term " << resp.term() << "):\n";
  Table coords({"ADDRESS", "ROLE", "VERSION", "SINCE"});
  for (const auto& c : resp.coordinators()) {
    coords.AddRow({c.address(), c.leader() ? "leader" : "standby",
                   c.version().empty() ? "unknown" : c.version(), When(c.started_ms())});
  }
  coords.Print(std::cout);
  std::cout << "\netcd:\n";
  Table etcd({"ENDPOINT", "HEALTH", "VERSION", "RAFT", "DB"});
  for (const auto& e : resp.etcd()) {
    etcd.AddRow({e.endpoint(), e.healthy() ? "healthy" : absl::StrCat("unhealthy: ", e.error()),
                 e.version().empty() ? "-" : e.version(),
                 e.healthy()
                     ? absl::StrCat(e.is_leader() ? "leader" : "follower", " term ", e.raft_term())
                     : "-",
                 e.healthy() ? absl::StrCat(e.db_size() / 1024, "KiB") : "-"});
  }
  etcd.Print(std::cout);
}

int RunStatus(const StatusOptions& o, const CtlContext& ctx) {
  miroir::v1::GetStatusRequest req;
  req.set_recent_actions(o.recent_actions);
  miroir::v1::GetStatusResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::GetStatus, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp));
    return kExitOk;
  }
  std::cout << "coordinator: " << ctx.coordinator
            << (resp.leader().empty() ? std::string(" (no coordinator leads)")
                                      : " (leader " + resp.leader() + ")")
            << "\n"
            << "coordinator version: "
            << (resp.coordinator_version().empty() ? "unknown" : resp.coordinator_version()) << "\n"
            << "initialized: " << (resp.initialized() ? "yes" : "no") << "\n"
            << "epoch: " << resp.epoch() << "\n"
            << "anti-entropy: " << (resp.anti_entropy_enabled() ? "enabled" : "disabled") << "\n"
            << "indexes: " << (resp.indexes().empty() ? "-" : absl::StrJoin(resp.indexes(), ", "))
            << "\n"
            << "pending recovery passes: " << resp.pending_recovery_passes() << "\n"
            << "state backend: "
            << (resp.state_backend().empty() ? "unknown" : resp.state_backend()) << "\n";
  PrintControlPlane(resp);
  std::cout << "\nnodes:\n";
  // HEALTH: reachability by the last worker report; MEMORY: used / limit as the
  // store reported it ("-" unknown, e.g. no report yet or no maxmemory).
  Table nodes({"ID", "GROUP", "ADDRESS", "STORE", "STATUS", "HEALTH", "MEMORY"});
  auto mib = [](uint64_t b) { return absl::StrCat(b / (1024 * 1024), "MiB"); };
  std::map<std::string, bool> reachable;
  for (const auto& h : resp.health()) reachable[h.node()] = h.reachable();
  for (const auto& n : resp.nodes()) {
    auto r = reachable.find(n.id());
    std::string memory = "-";
    if (n.capacity_bytes() > 0) {
      memory = absl::StrCat(mib(n.used_bytes()), "/", mib(n.capacity_bytes()));
    } else if (n.used_bytes() > 0) {
      memory = absl::StrCat(mib(n.used_bytes()), "/-");
    }
    nodes.AddRow({n.id(), n.group(), n.address(), n.store(), NodeStatusName(n.status()),
                  r == reachable.end() ? "-" : (r->second ? "reachable" : "unreachable"), memory});
  }
  nodes.Print(std::cout);
  std::cout << "\nworkers:\n";
  Table workers({"ID", "ADDRESS", "VERSION", "ACKED_EPOCH", "INFLIGHT", "TASKS"});
  for (const auto& w : resp.workers()) {
    workers.AddRow({w.id(), w.address(), w.version().empty() ? "unknown" : w.version(),
                    absl::StrCat(w.acked_epoch()), absl::StrCat(w.inflight_writes()),
                    absl::StrCat(w.running_tasks())});
  }
  workers.Print(std::cout);
  std::cout << "\nplans:\n";
  Table plans({"ID", "KIND", "STATE", "MOVES", "DESCRIPTION"});
  for (const auto& p : resp.plans()) {
    plans.AddRow({absl::StrCat(p.id()), KindName(p.kind()), StateName(p.state()),
                  absl::StrCat(p.moves_size()), p.description()});
  }
  plans.Print(std::cout);
  // Audit (DESIGN §13): who did what, when — the latest accepted mutations.
  std::cout << "\nrecent actions:\n";
  Table actions({"TIME", "ACTOR", "CALL", "WHAT"});
  for (const auto& a : resp.recent_actions()) {
    actions.AddRow({When(a.time_ms()), a.actor(), a.call(), a.reason()});
  }
  actions.Print(std::cout);
  return kExitOk;
}

}  // namespace

void AddStatusCommand(CLI::App* app, Action* action) {
  CLI::App* cmd = app->add_subcommand(
      "status",
      "Leader, epoch, nodes, plans, pending recovery passes, workers, coordinators and etcd "
      "(HA), recent actions (audit)");
  auto o = std::make_shared<StatusOptions>();
  cmd->add_option("--recent-actions", o->recent_actions,
                  "Audit records to show, newest first (1..1000)")
      ->check(CLI::Range(1, 1000));
  cmd->callback(
      [action, o] { *action = [o](const CtlContext& ctx) { return RunStatus(*o, ctx); }; });
}

}  // namespace miroir::ctl
