// `miroir-ctl plan ...`: topology changes (add-node, remove-node, add-group,
// remove-group, restore, rejoin) and their life cycle (list, show, watch, pause, resume, abort).
#include <unistd.h>

#include <iostream>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"
#include "ctl/flag_parsing.h"
#include "ctl/plan_format.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;
using miroir::v1::Plan;

// Flags of every plan-creating verb plus each verb's own.
struct CreateOptions {
  miroir::v1::PlanKind kind = miroir::v1::PLAN_KIND_UNSPECIFIED;
  std::string id, group, address, store = "redis", nodes;
  bool dry_run = false, force = false, skip_delta_pass = false;
  uint64_t throttle = 0;
  std::string schedule_window;
};

int RunCreate(const CreateOptions& o, const CtlContext& ctx) {
  miroir::v1::CreatePlanRequest req;
  req.set_kind(o.kind);
  req.set_node_id(o.id);
  req.set_group(o.group);
  req.set_address(o.address);
  if (o.kind == miroir::v1::PLAN_ADD_NODE) req.set_store(o.store);
  if (o.kind == miroir::v1::PLAN_ADD_GROUP) {
    auto nodes = ParseNodesFlag(o.nodes);
    if (!nodes.ok()) return Fail(nodes.status());
    for (auto& n : *nodes) {
      n.set_group(o.group);
      *req.add_nodes() = std::move(n);
    }
  }
  req.set_dry_run(o.dry_run);
  req.set_force(o.force);
  req.set_throttle_docs_per_s(o.throttle);
  req.set_schedule_window(o.schedule_window);
  req.set_skip_delta_pass(o.skip_delta_pass);
  miroir::v1::CreatePlanResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::CreatePlan, req, &resp); !s.ok()) {
    return Fail(absl::Status(s.code(), WithPrefix("plan refused: ", s.message())));
  }
  const Plan& plan = resp.plan();
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(o.dry_run ? DryRunJson(plan) : PlanJson(plan));
    return kExitOk;
  }
  if (o.dry_run) std::cout << "dry run: nothing saved\n";
  PrintPlanTable(plan, std::cout);
  if (!o.dry_run) std::cout << "follow it with: miroir-ctl plan watch " << plan.id() << "\n";
  return kExitOk;
}

int RunList(const CtlContext& ctx) {
  miroir::v1::ListPlansRequest req;
  miroir::v1::ListPlansResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::ListPlans, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& p : resp.plans()) out.push_back(PlanJson(p));
    PrintJson(out);
    return kExitOk;
  }
  Table t({"ID", "KIND", "STATE", "MOVES", "CREATED", "DESCRIPTION"});
  for (const auto& p : resp.plans()) {
    t.AddRow({absl::StrCat(p.id()), KindName(p.kind()), StateName(p.state()),
              absl::StrCat(p.moves_size()),
              absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(p.created_ms()),
                               absl::UTCTimeZone()),
              p.description()});
  }
  t.Print(std::cout);
  return kExitOk;
}

void PrintPlanResponse(const miroir::v1::GetPlanResponse& resp, const CtlContext& ctx) {
  if (ctx.output == OutputFormat::kJson) {
    nlohmann::ordered_json j = PlanJson(resp.plan());
    nlohmann::ordered_json history = nlohmann::ordered_json::array();
    for (const auto& e : resp.history()) history.push_back(ProtoToJson(e));
    j["history"] = history;
    j["tasks"] = TasksJson(resp.tasks());
    PrintJson(j);
    return;
  }
  PrintPlanTable(resp.plan(), std::cout);
  if (!resp.tasks().empty()) {
    std::cout << "\ntasks:\n";
    PrintTasksTable(resp.tasks(), std::cout);
  }
  if (!resp.history().empty()) {
    std::cout << "\nhistory:\n";
    for (const auto& e : resp.history()) std::cout << EventLine(e, resp.plan()) << "\n";
  }
}

int RunShow(uint64_t id, const CtlContext& ctx) {
  miroir::v1::GetPlanRequest req;
  req.set_id(id);
  miroir::v1::GetPlanResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::GetPlan, req, &resp); !s.ok()) {
    return Fail(s);
  }
  PrintPlanResponse(resp, ctx);
  return kExitOk;
}

// `plan tasks ID`: what each move of the plan waits for, one task per row.
int RunTasks(uint64_t id, const CtlContext& ctx) {
  miroir::v1::GetPlanRequest req;
  req.set_id(id);
  miroir::v1::GetPlanResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::GetPlan, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(TasksJson(resp.tasks()));
    return kExitOk;
  }
  std::cout << "plan " << id << " " << StateName(resp.plan().state()) << ": " << resp.tasks_size()
            << " task(s)\n";
  if (!resp.tasks().empty()) PrintTasksTable(resp.tasks(), std::cout);
  // A move without a task waits for the coordinator (an epoch ack, a window,
  // its turn): its state and note say which.
  for (const auto& m : resp.plan().moves()) {
    if (m.task_id() != 0 || !MoveRunning(m.state())) continue;
    std::cout << "move " << m.id() << " (" << m.index() << "/" << m.shard() << " " << m.group()
              << ") " << MoveStateName(m.state()) << ": no task; "
              << (m.message().empty() ? "waits for the coordinator's next step" : m.message())
              << "\n";
  }
  return kExitOk;
}

enum class Control { kPause, kResume, kAbort };

int RunControl(Control what, uint64_t id, const CtlContext& ctx) {
  miroir::v1::PlanIdRequest req;
  req.set_id(id);
  miroir::v1::GetPlanResponse resp;
  absl::Status s;
  switch (what) {
    case Control::kPause:
      s = CallCoordinator(ctx, &Coordinator::Stub::PausePlan, req, &resp);
      break;
    case Control::kResume:
      s = CallCoordinator(ctx, &Coordinator::Stub::ResumePlan, req, &resp);
      break;
    case Control::kAbort:
      s = CallCoordinator(ctx, &Coordinator::Stub::AbortPlan, req, &resp);
      break;
  }
  if (!s.ok()) return Fail(s);
  if (ctx.output == OutputFormat::kJson) {
    PrintPlanResponse(resp, ctx);
  } else {
    std::cout << "plan " << resp.plan().id() << " " << StateName(resp.plan().state()) << "\n";
  }
  return kExitOk;
}

// Live controls (docs/operations.md "Live controls").
struct UpdateOptions {
  uint64_t id = 0;
  int64_t throttle = 0;
  std::string schedule_window;
  CLI::Option* throttle_opt = nullptr;
  CLI::Option* window_opt = nullptr;
};

int RunUpdate(const UpdateOptions& o, const CtlContext& ctx) {
  miroir::v1::UpdatePlanRequest req;
  req.set_id(o.id);
  if (o.throttle_opt->count() > 0) req.set_throttle_docs_per_s(o.throttle);
  if (o.window_opt->count() > 0) req.set_schedule_window(o.schedule_window);
  miroir::v1::GetPlanResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::UpdatePlan, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintPlanResponse(resp, ctx);
    return kExitOk;
  }
  const Plan& p = resp.plan();
  std::cout << "plan " << p.id() << " " << StateName(p.state()) << ": throttle "
            << p.throttle_docs_per_s() << " docs/s, schedule window "
            << (p.schedule_window().empty() ? "(config default)" : p.schedule_window()) << "\n";
  return kExitOk;
}

int RunCutover(uint64_t id, bool force, const CtlContext& ctx) {
  miroir::v1::CutoverPlanRequest req;
  req.set_id(id);
  req.set_force(force);
  miroir::v1::GetPlanResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::CutoverPlan, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintPlanResponse(resp, ctx);
    return kExitOk;
  }
  int forced = 0;
  for (const auto& m : resp.plan().moves()) forced += m.force_cutover() ? 1 : 0;
  std::cout << "plan " << id << ": " << forced
            << " move(s) cut over after their current catch-up pass; "
            << "follow with: miroir-ctl plan watch " << id << "\n";
  return kExitOk;
}

int RunAll(bool pause, const CtlContext& ctx) {
  miroir::v1::PlansChangedResponse resp;
  absl::Status s = pause ? CallCoordinator(ctx, &Coordinator::Stub::PauseAllPlans,
                                           miroir::v1::PauseAllPlansRequest(), &resp)
                         : CallCoordinator(ctx, &Coordinator::Stub::ResumeAllPlans,
                                           miroir::v1::ResumeAllPlansRequest(), &resp);
  if (!s.ok()) return Fail(s);
  if (ctx.output == OutputFormat::kJson) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& p : resp.plans()) out.push_back(PlanJson(p));
    PrintJson(out);
    return kExitOk;
  }
  std::cout << resp.plans_size() << " plan(s) " << (pause ? "paused" : "resumed");
  for (int i = 0; i < resp.plans_size(); ++i) std::cout << (i ? ", " : ": ") << resp.plans(i).id();
  std::cout << "\n";
  return kExitOk;
}

// Progress bars redrawn in place on a terminal: one line per running move.
class ProgressView {
 public:
  void Update(const miroir::v1::WatchPlanResponse& msg) {
    std::string out;
    if (drawn_ > 0) absl::StrAppend(&out, "\x1b[", drawn_, "A\x1b[J");  // up, clear below
    if (msg.has_event() && !msg.event().to().empty()) {
      absl::StrAppend(&out, EventLine(msg.event(), msg.plan()), "\n");
    } else if (drawn_ == 0) {
      absl::StrAppend(&out, "plan ", msg.plan().id(), " ", KindName(msg.plan().kind()), " ",
                      StateName(msg.plan().state()), ": ", msg.plan().description(), "\n");
    }
    drawn_ = 0;
    const double now = absl::ToUnixMillis(absl::Now()) / 1000.0;
    for (const auto& m : msg.plan().moves()) {
      if (!MoveRunning(m.state())) continue;
      auto [it, fresh] = first_seen_.try_emplace(m.id(), now, m.documents_copied());
      double rate = 0;
      if (!fresh && now > it->second.first && m.documents_copied() > it->second.second) {
        rate = (m.documents_copied() - it->second.second) / (now - it->second.first);
      }
      absl::StrAppend(&out, ProgressLine(m, rate), "\n");
      ++drawn_;
    }
    std::cout << out << std::flush;
  }

 private:
  int drawn_ = 0;
  std::map<uint64_t, std::pair<double, uint64_t>> first_seen_;  // move -> (time s, docs)
};

int RunWatch(uint64_t id, const CtlContext& ctx) {
  auto stub = NewCoordinatorStub(ctx);
  grpc::ClientContext call;
  PrepareCall(ctx, &call, /*unbounded=*/true);
  miroir::v1::WatchPlanRequest req;
  req.set_id(id);
  auto reader = stub->WatchPlan(&call, req);
  const bool tty = ctx.output == OutputFormat::kTable && isatty(STDOUT_FILENO);
  ProgressView view;
  miroir::v1::WatchPlanResponse msg;
  Plan last;
  bool first = true, ended = false;
  while (reader->Read(&msg)) {
    last = msg.plan();
    if (ctx.output == OutputFormat::kJson) {
      nlohmann::ordered_json j = {{"plan", PlanJson(msg.plan())}};
      if (msg.has_event()) j["event"] = ProtoToJson(msg.event());
      PrintJson(j);
    } else if (tty) {
      view.Update(msg);
    } else if (msg.has_event() && !msg.event().to().empty()) {
      std::cout << EventLine(msg.event(), msg.plan()) << std::endl;
    } else if (first) {
      std::cout << "plan " << last.id() << " " << KindName(last.kind()) << " "
                << StateName(last.state()) << ": " << last.description() << std::endl;
    }
    first = false;
    if (PlanEnded(last.state())) {
      ended = true;
      call.TryCancel();  // the server may keep the stream open; we have the end
      break;
    }
  }
  grpc::Status st = reader->Finish();
  if (!ended) {
    if (!st.ok()) return Fail(CallStatus(ctx, st));
    return Fail(absl::UnavailableError(absl::StrCat(
        "watch of plan ", id, " ended before the plan did (state ", StateName(last.state()), ")")));
  }
  if (ctx.output == OutputFormat::kTable) {
    std::cout << "plan " << last.id() << " " << StateName(last.state()) << std::endl;
  }
  if (last.state() == miroir::v1::PLAN_DONE) return kExitOk;
  PrintError(absl::StrCat("plan ", last.id(), " ended ", StateName(last.state())));
  return kExitFailed;
}

void AddCommonPlanFlags(CLI::App* cmd, CreateOptions* o) {
  cmd->add_flag("--dry-run", o->dry_run, "Print the plan, save nothing");
  cmd->add_flag("--force", o->force, "Start outside the schedule window (recorded)");
  cmd->add_option("--throttle", o->throttle, "Backfill documents/s (0 = config default)");
  cmd->add_option("--schedule-window", o->schedule_window,
                  "Window name or HH:MM-HH:MM UTC the cutover waits for");
  cmd->add_flag("--skip-delta-pass", o->skip_delta_pass,
                "Skip catch-up/pause/final delta; refused while anti-entropy is off");
}

CLI::App* AddCreateVerb(CLI::App* plan, Action* action, const char* name, const char* help,
                        miroir::v1::PlanKind kind, std::shared_ptr<CreateOptions> o) {
  o->kind = kind;
  CLI::App* cmd = plan->add_subcommand(name, help);
  AddCommonPlanFlags(cmd, o.get());
  cmd->callback(
      [o, action] { *action = [o](const CtlContext& ctx) { return RunCreate(*o, ctx); }; });
  return cmd;
}

// The plan id: positional (CLI.md: `plan show ID`), `--id ID` accepted too.
void AddPlanIdOption(CLI::App* cmd, uint64_t* id) {
  cmd->add_option("ID,--id", *id, "Plan id (positional, or --id)")->required();
}

void AddIdVerb(CLI::App* plan, Action* action, const char* name, const char* help,
               std::function<int(uint64_t, const CtlContext&)> run) {
  auto id = std::make_shared<uint64_t>(0);
  CLI::App* cmd = plan->add_subcommand(name, help);
  AddPlanIdOption(cmd, id.get());
  cmd->callback(
      [id, run, action] { *action = [id, run](const CtlContext& ctx) { return run(*id, ctx); }; });
}

}  // namespace

void AddPlanCommands(CLI::App* app, Action* action) {
  CLI::App* plan = app->add_subcommand("plan", "Topology changes and their life cycle");
  plan->require_subcommand(1);

  auto add_node = std::make_shared<CreateOptions>();
  CLI::App* c = AddCreateVerb(plan, action, "add-node", "Add one node to a group",
                              miroir::v1::PLAN_ADD_NODE, add_node);
  c->add_option("--id", add_node->id, "New node id")->required();
  c->add_option("--group", add_node->group, "Group to join")->required();
  c->add_option("--address", add_node->address, "Store HOST:PORT")->required();
  c->add_option("--store", add_node->store, "Store type")->capture_default_str();

  auto remove_node = std::make_shared<CreateOptions>();
  c = AddCreateVerb(plan, action, "remove-node", "Drain and remove one node",
                    miroir::v1::PLAN_REMOVE_NODE, remove_node);
  c->add_option("--id", remove_node->id, "Node id")->required();

  auto add_group = std::make_shared<CreateOptions>();
  c = AddCreateVerb(plan, action, "add-group", "Add a whole replica group",
                    miroir::v1::PLAN_ADD_GROUP, add_group);
  c->add_option("--group", add_group->group, "New group id")->required();
  c->add_option("--nodes", add_group->nodes, "Its nodes: 'ID=HOST:PORT,ID=HOST:PORT'")->required();

  auto remove_group = std::make_shared<CreateOptions>();
  c = AddCreateVerb(plan, action, "remove-group", "Remove a whole replica group",
                    miroir::v1::PLAN_REMOVE_GROUP, remove_group);
  c->add_option("--group", remove_group->group, "Group id")->required();

  auto restore = std::make_shared<CreateOptions>();
  c = AddCreateVerb(plan, action, "restore", "Restore RF after a node was marked failed",
                    miroir::v1::PLAN_RESTORE, restore);
  c->add_option("--id", restore->id, "Failed node id")->required();

  auto rejoin = std::make_shared<CreateOptions>();
  c = AddCreateVerb(plan, action, "rejoin",
                    "Copy a failed node's shards back into it and make it active again",
                    miroir::v1::PLAN_REJOIN, rejoin);
  c->add_option("--id", rejoin->id, "Failed node id")->required();

  CLI::App* list = plan->add_subcommand("list", "Every plan, newest first");
  list->callback([action] { *action = RunList; });

  AddIdVerb(plan, action, "show", "One plan with its moves, their tasks and its history", RunShow);
  AddIdVerb(plan, action, "tasks",
            "What each move of a plan waits for: its task's kind, state, holder worker, "
            "attempts and last error",
            RunTasks);
  AddIdVerb(plan, action, "watch",
            "Follow a plan until it ends: progress bars on a terminal, one line per change "
            "otherwise; exit 0 if done, 1 if failed or aborted",
            RunWatch);
  AddIdVerb(
      plan, action, "pause", "Pause a running plan (moves hold their state)",
      [](uint64_t id, const CtlContext& ctx) { return RunControl(Control::kPause, id, ctx); });
  AddIdVerb(plan, action, "resume", "Resume a paused plan", [](uint64_t id, const CtlContext& ctx) {
    return RunControl(Control::kResume, id, ctx);
  });
  AddIdVerb(
      plan, action, "abort", "Abort a plan: moves before active are rolled back",
      [](uint64_t id, const CtlContext& ctx) { return RunControl(Control::kAbort, id, ctx); });

  auto update = std::make_shared<UpdateOptions>();
  CLI::App* u = plan->add_subcommand(
      "update", "Change a running or paused plan's throttle and/or schedule window, live");
  AddPlanIdOption(u, &update->id);
  update->throttle_opt = u->add_option(
      "--throttle", update->throttle,
      "Copy documents/s (at least 1); the copies running now restart from their checkpoints");
  update->window_opt = u->add_option("--schedule-window", update->schedule_window,
                                     "Window name or HH:MM-HH:MM UTC the cutover waits for "
                                     "('' = migration.allowed_windows)");
  u->callback([update, action] {
    *action = [update](const CtlContext& ctx) { return RunUpdate(*update, ctx); };
  });

  auto cut_id = std::make_shared<uint64_t>(0);
  auto cut_force = std::make_shared<bool>(false);
  CLI::App* cut = plan->add_subcommand(
      "cutover",
      "Force the cutover of moves whose catch-up does not converge (refused by the safety "
      "gates; max_write_stall still applies)");
  AddPlanIdOption(cut, cut_id.get());
  cut->add_flag("--force", *cut_force, "Required: cut over before the catch-up converged");
  cut->callback([cut_id, cut_force, action] {
    *action = [cut_id, cut_force](const CtlContext& ctx) {
      return RunCutover(*cut_id, *cut_force, ctx);
    };
  });

  CLI::App* plans = app->add_subcommand("plans", "Every plan at once");
  plans->require_subcommand(1);
  plans->add_subcommand("pause-all", "Pause every running plan (moves hold their state)")
      ->callback([action] { *action = [](const CtlContext& ctx) { return RunAll(true, ctx); }; });
  plans->add_subcommand("resume-all", "Resume every paused plan")->callback([action] {
    *action = [](const CtlContext& ctx) { return RunAll(false, ctx); };
  });
}

}  // namespace miroir::ctl
