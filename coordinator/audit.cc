#include "coordinator/audit.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/auth.h"

namespace miroir::coordinator {
namespace {

thread_local const Caller* current_caller = nullptr;

// At most this many names per kind in a summary, then "+N more".
constexpr size_t kNamesPerKind = 3;

template <typename Map, typename Fn>
void AppendNames(const char* kind, const char* kinds, const Map& m, Fn name,
                 std::vector<std::string>* parts) {
  if (m.empty()) return;
  std::vector<std::string> names;
  for (const auto& entry : m) {
    if (names.size() == kNamesPerKind) break;
    names.push_back(name(entry));
  }
  std::string part = absl::StrCat(m.size() > 1 ? kinds : kind, " ", absl::StrJoin(names, ", "));
  if (m.size() > kNamesPerKind) absl::StrAppend(&part, " +", m.size() - kNamesPerKind, " more");
  parts->push_back(std::move(part));
}

}  // namespace

std::string ActorOf(const grpc::ServerContext& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth != nullptr) {
    for (const grpc::string_ref& v : auth->FindPropertyValues(kPrincipalProperty)) {
      return std::string(v.data(), v.size());
    }
    for (const grpc::string_ref& v : auth->FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME)) {
      return std::string(v.data(), v.size());
    }
  }
  return absl::StrCat("anonymous@", ctx.peer());
}

ScopedCaller::ScopedCaller(const grpc::ServerContext* ctx, std::string call)
    : caller_{ActorOf(*ctx), std::move(call)}, outer_(current_caller) {
  current_caller = &caller_;
}

ScopedCaller::~ScopedCaller() { current_caller = outer_; }

const Caller* ScopedCaller::Current() { return current_caller; }

std::string DescribeChange(const Change& c) {
  std::vector<std::string> parts;
  if (c.initialized) parts.push_back(*c.initialized ? "cluster initialized" : "cluster reset");
  if (c.group_order) parts.push_back(absl::StrCat("groups ", absl::StrJoin(*c.group_order, ",")));
  AppendNames(
      "node", "nodes", c.nodes, [](const auto& e) { return e.first; }, &parts);
  AppendNames(
      "index", "indexes", c.indexes, [](const auto& e) { return e.first; }, &parts);
  AppendNames(
      "alias", "aliases", c.aliases,
      [](const auto& e) {
        return e.second.empty() ? absl::StrCat(e.first, " removed")
                                : absl::StrCat(e.first, " -> ", e.second);
      },
      &parts);
  AppendNames(
      "plan", "plans", c.plans,
      [](const auto& e) {
        return absl::StrCat(e.first, " (", PlanStateName(e.second.state()), ")");
      },
      &parts);
  AppendNames(
      "reshard", "reshards", c.reshards,
      [](const auto& e) { return absl::StrCat(e.first, " (", e.second.index(), ")"); }, &parts);
  AppendNames(
      "anti-entropy run", "anti-entropy runs", c.ae_runs,
      [](const auto& e) { return absl::StrCat(e.first); }, &parts);
  AppendNames(
      "verify", "verifies", c.verifies, [](const auto& e) { return absl::StrCat(e.first); },
      &parts);
  if (!c.moves.empty()) parts.push_back(absl::StrCat(c.moves.size(), " move(s)"));
  if (!c.tasks.empty() || !c.deleted_tasks.empty()) {
    parts.push_back(absl::StrCat(c.tasks.size() + c.deleted_tasks.size(), " task(s)"));
  }
  if (!c.events.empty()) parts.push_back(absl::StrCat(c.events.size(), " event(s)"));
  if (c.bump_epoch) parts.push_back("new epoch");
  if (parts.empty()) parts.push_back("state");
  return absl::StrJoin(parts, "; ");
}

void StampAudit(const Caller& caller, int64_t now_ms, Change* change) {
  if (change->empty()) return;
  for (v1::Event& e : change->events) {
    if (!e.actor().empty()) continue;
    e.set_actor(caller.actor);
    e.set_call(caller.call);
  }
  for (auto& [id, run] : change->ae_runs) {
    if (!run.scheduled() && run.started_by().empty()) run.set_started_by(caller.actor);
  }
  change->audit.push_back(
      AuditRecord(caller, now_ms, DescribeChange(*change),
                  change->events.empty() ? 0 : change->events.front().plan_id()));
}

v1::Event AuditRecord(const Caller& caller, int64_t now_ms, std::string what, uint64_t plan_id) {
  v1::Event record;
  record.set_time_ms(now_ms);
  record.set_plan_id(plan_id);
  record.set_to("accepted");
  record.set_reason(std::move(what));
  record.set_actor(caller.actor);
  record.set_call(caller.call);
  return record;
}

}  // namespace miroir::coordinator
