#include "ctl/plan_format.h"

#include <algorithm>
#include <cmath>
#include <ostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Move;
using miroir::v1::Plan;

std::string Strip(const std::string& name) {
  const size_t underscore = name.find('_');
  std::string out = underscore == std::string::npos ? name : name.substr(underscore + 1);
  return absl::AsciiStrToLower(out);
}

std::vector<std::string> Strings(const google::protobuf::RepeatedPtrField<std::string>& r) {
  return std::vector<std::string>(r.begin(), r.end());
}

std::string HumanCount(double v) {
  if (v >= 1e6) return absl::StrFormat("%.1fM", v / 1e6);
  if (v >= 1e4) return absl::StrFormat("%.1fk", v / 1e3);
  return absl::StrFormat("%.0f", v);
}

std::string HumanSeconds(double s) {
  if (s < 60) return absl::StrFormat("%.0fs", s);
  if (s < 3600) return absl::StrFormat("%dm%02ds", int(s) / 60, int(s) % 60);
  return absl::StrFormat("%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
}

}  // namespace

std::string KindName(miroir::v1::PlanKind k) { return Strip(miroir::v1::PlanKind_Name(k)); }
std::string StateName(miroir::v1::PlanState s) { return Strip(miroir::v1::PlanState_Name(s)); }
std::string MoveStateName(miroir::v1::MoveState s) { return Strip(miroir::v1::MoveState_Name(s)); }
std::string NodeStatusName(miroir::v1::NodeStatus s) {
  return Strip(miroir::v1::NodeStatus_Name(s));
}
std::string ShardStateName(miroir::v1::ShardState s) {
  return Strip(miroir::v1::ShardState_Name(s));
}
std::string RoleName(miroir::v1::GenerationRole r) {
  return Strip(miroir::v1::GenerationRole_Name(r));
}

bool PlanEnded(miroir::v1::PlanState s) {
  return s == miroir::v1::PLAN_DONE || s == miroir::v1::PLAN_FAILED ||
         s == miroir::v1::PLAN_ABORTED;
}

bool MoveRunning(miroir::v1::MoveState s) {
  return s != miroir::v1::MOVE_PENDING && s != miroir::v1::MOVE_DONE &&
         s != miroir::v1::MOVE_FAILED && s != miroir::v1::MOVE_ABORTED &&
         s != miroir::v1::MOVE_STATE_UNSPECIFIED;
}

nlohmann::ordered_json DryRunJson(const Plan& plan) {
  nlohmann::ordered_json moves = nlohmann::ordered_json::array();
  for (const Move& m : plan.moves()) {
    moves.push_back({{"index", m.index()},
                     {"shard", m.shard()},
                     {"group", m.group()},
                     {"old_owners", Strings(m.old_owners())},
                     {"new_owners", Strings(m.new_owners())},
                     {"est_documents", m.est_documents()},
                     {"est_bytes", m.est_bytes()}});
  }
  return {{"kind", KindName(plan.kind())},
          {"moves", moves},
          {"est_duration_s", plan.est_duration_s()},
          {"warnings", Strings(plan.warnings())}};
}

nlohmann::ordered_json PlanJson(const Plan& plan) {
  nlohmann::ordered_json moves = nlohmann::ordered_json::array();
  for (const Move& m : plan.moves()) {
    moves.push_back({{"id", m.id()},
                     {"index", m.index()},
                     {"generation", m.generation()},
                     {"shard", m.shard()},
                     {"group", m.group()},
                     {"old_owners", Strings(m.old_owners())},
                     {"new_owners", Strings(m.new_owners())},
                     {"sources", Strings(m.sources())},
                     {"state", MoveStateName(m.state())},
                     {"est_documents", m.est_documents()},
                     {"est_bytes", m.est_bytes()},
                     {"documents_copied", m.documents_copied()},
                     {"remaining", m.remaining()},
                     {"state_since_ms", m.state_since_ms()},
                     {"task_id", m.task_id()},
                     {"stall_ms", m.stall_ms()},
                     {"stall_retries", m.stall_retries()},
                     {"force_cutover", m.force_cutover()},
                     {"message", m.message()}});
  }
  return {{"id", plan.id()},
          {"kind", KindName(plan.kind())},
          {"state", StateName(plan.state())},
          {"description", plan.description()},
          {"node_id", plan.node_id()},
          {"group", plan.group()},
          {"created_ms", plan.created_ms()},
          {"ended_ms", plan.ended_ms()},
          {"force", plan.force()},
          {"skip_delta_pass", plan.skip_delta_pass()},
          {"throttle_docs_per_s", plan.throttle_docs_per_s()},
          {"schedule_window", plan.schedule_window()},
          {"moves", moves},
          {"est_duration_s", plan.est_duration_s()},
          {"warnings", Strings(plan.warnings())}};
}

nlohmann::ordered_json TasksJson(
    const google::protobuf::RepeatedPtrField<miroir::v1::PlanTask>& tasks) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& t : tasks) out.push_back(ProtoToJson(t));
  return out;
}

void PrintTasksTable(const google::protobuf::RepeatedPtrField<miroir::v1::PlanTask>& tasks,
                     std::ostream& out) {
  Table t(
      {"TASK", "MOVE", "SHARD", "KIND", "STATE", "WORKER", "ATTEMPTS", "FAILURES", "LAST_ERROR"});
  for (const auto& x : tasks) {
    t.AddRow({absl::StrCat(x.id()), absl::StrCat(x.move_id()),
              absl::StrCat(x.index(), "/", x.shard()), x.kind(), x.state(),
              x.worker().empty() ? "-" : x.worker(), absl::StrCat(x.attempts()),
              absl::StrCat(x.failures()), x.last_error().empty() ? "-" : x.last_error()});
  }
  t.Print(out);
}

void PrintPlanTable(const Plan& plan, std::ostream& out) {
  out << "plan " << plan.id() << " " << KindName(plan.kind()) << " " << StateName(plan.state());
  if (!plan.description().empty()) out << ": " << plan.description();
  out << "\n";
  if (plan.force()) out << "force: window gate bypassed\n";
  if (plan.skip_delta_pass()) out << "skip_delta_pass: true\n";
  if (!plan.schedule_window().empty()) out << "schedule window: " << plan.schedule_window() << "\n";
  out << absl::StrFormat("estimated duration: %.1fs\n", plan.est_duration_s());
  for (const auto& w : plan.warnings()) out << "warning: " << w << "\n";
  Table t({"MOVE", "INDEX", "SHARD", "GROUP", "OLD", "NEW", "STATE", "COPIED", "EST_DOCS", "NOTE"});
  for (const Move& m : plan.moves()) {
    t.AddRow({absl::StrCat(m.id()), m.index(), absl::StrCat(m.shard()), m.group(),
              JoinList(Strings(m.old_owners())), JoinList(Strings(m.new_owners())),
              MoveStateName(m.state()), absl::StrCat(m.documents_copied()),
              absl::StrCat(m.est_documents()), m.message()});
  }
  t.Print(out);
}

std::string ProgressLine(const Move& m, double rate, int bar_width) {
  const double total = static_cast<double>(m.est_documents());
  const double done = static_cast<double>(m.documents_copied());
  const double fraction = total > 0 ? std::min(1.0, done / total) : 0;
  const int filled = static_cast<int>(std::lround(fraction * bar_width));
  std::string bar =
      absl::StrCat("[", std::string(filled, '#'), std::string(bar_width - filled, '-'), "]");
  std::string line =
      absl::StrCat(m.index(), "/", m.shard(), " ", m.group(), " ", MoveStateName(m.state()), " ",
                   bar, " ", HumanCount(done), "/", total > 0 ? HumanCount(total) : "?", " docs");
  if (rate > 0) {
    absl::StrAppend(&line, " ", HumanCount(rate), "/s");
    if (total > done) absl::StrAppend(&line, " ETA ", HumanSeconds((total - done) / rate));
  }
  if (m.remaining() > 0) absl::StrAppend(&line, " remaining ", m.remaining());
  if (!m.message().empty()) absl::StrAppend(&line, " (", m.message(), ")");
  return line;
}

std::string EventLine(const miroir::v1::Event& e, const Plan& plan) {
  std::string when =
      absl::FormatTime("%H:%M:%S", absl::FromUnixMillis(e.time_ms()), absl::UTCTimeZone());
  std::string who = absl::StrCat("plan ", plan.id());
  if (e.move_id() != 0) {
    absl::StrAppend(&who, " move ", e.move_id());
    for (const Move& m : plan.moves()) {
      if (m.id() == e.move_id())
        absl::StrAppend(&who, " (", m.index(), "/", m.shard(), " ", m.group(), ")");
    }
  }
  std::string line = absl::StrCat(when, " ", who, ": ", e.from(), " -> ", e.to());
  if (!e.reason().empty()) absl::StrAppend(&line, " (", e.reason(), ")");
  if (e.epoch() != 0) absl::StrAppend(&line, " epoch ", e.epoch());
  if (!e.actor().empty()) absl::StrAppend(&line, " by ", e.actor());
  return line;
}

}  // namespace miroir::ctl
