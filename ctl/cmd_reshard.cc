// `miroir-ctl reshard start|status|watch|abort|rollback|complete|cutover`: clients of
// miroir.v1.Reshard (DESIGN §7, docs/resharding.md).
//   start --index I --new-shards N [--throttle] [--schedule-window] [--force] [--dry-run]
// Exit codes as CLI.md: a refused start (outside the window, another reshard,
// disabled) is 1; bad input (N equal to S, 0, over 65536) is 2.
#include <unistd.h>

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/grpc_server.h"
#include "common/reshard_names.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"
#include "miroir/v1/reshard.grpc.pb.h"

namespace miroir::ctl {
namespace {

namespace pb = ::miroir::v1;

struct StartOptions {
  std::string index;
  uint32_t new_shards = 0;
  uint64_t throttle = 0;
  std::string schedule_window;
  bool force = false;
  bool dry_run = false;
};

std::unique_ptr<pb::Reshard::Stub> Stub(const CtlContext& ctx) {
  return pb::Reshard::NewStub(NewCoordinatorChannel(ctx));
}

std::string Bytes(uint64_t b) {
  if (b >= (uint64_t{1} << 30)) return absl::StrFormat("%.1f GiB", b / double(uint64_t{1} << 30));
  if (b >= (uint64_t{1} << 20)) return absl::StrFormat("%.1f MiB", b / double(uint64_t{1} << 20));
  if (b >= 1024) return absl::StrFormat("%.1f KiB", b / 1024.0);
  return absl::StrCat(b, " B");
}

std::string Ms(int64_t unix_ms) {
  return unix_ms == 0 ? "-"
                      : absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms),
                                         absl::UTCTimeZone());
}

// "TIME  FROM -> TO  REASON", then "  by ACTOR" for an operator's call.
std::string EventLine(const miroir::v1::Event& e) {
  std::string line = absl::StrCat(Ms(e.time_ms()), "  ", e.from().empty() ? "-" : e.from(), " -> ",
                                  e.to(), "  ", e.reason());
  if (!e.actor().empty()) absl::StrAppend(&line, "  by ", e.actor());
  return line;
}

// A reshard answer as JSON, its state, failed_from and step named as operators
// read them ("swap_paused", not the enum's full name).
template <typename Response>
nlohmann::ordered_json ReshardJson(const Response& resp) {
  nlohmann::ordered_json j = ProtoToJson(resp);
  if (resp.has_reshard() && j.is_object() && j.contains("reshard")) {
    nlohmann::ordered_json& r = j["reshard"];
    r["state"] = ReshardStateName(resp.reshard().state());
    r["failed_from"] = ReshardStateName(resp.reshard().failed_from());
    r["step"] = ReshardStepName(resp.reshard().step());
  }
  return j;
}

std::string Line(const pb::ReshardRecord& r) {
  std::string s = absl::StrCat("reshard ", r.id(), " of ", r.index(), " ", r.old_shards(), " -> ",
                               r.new_shards(), " shards: ", ReshardStateName(r.state()));
  if (r.step() != pb::RESHARD_STEP_NONE) absl::StrAppend(&s, " (", ReshardStepName(r.step()), ")");
  absl::StrAppend(&s, ", phase ", ReshardPhase(r.state()), ", ", r.documents_backfilled(),
                  " documents copied");
  if (r.catch_up_passes()) absl::StrAppend(&s, ", ", r.catch_up_passes(), " catch-up passes");
  if (r.verify_rounds()) {
    absl::StrAppend(&s, ", verify ", r.verify_rounds(), "x (", r.verify_mismatches(),
                    " mismatches)");
  }
  if (r.stall_ms()) absl::StrAppend(&s, ", swap stall ", r.stall_ms(), " ms");
  if (!r.message().empty()) absl::StrAppend(&s, ": ", r.message());
  return s;
}

void PrintStatus(const pb::ReshardStatusResponse& st) {
  const pb::ReshardRecord& r = st.reshard();
  std::cout << Line(r) << "\n";
  Table t({"FIELD", "VALUE"});
  t.AddRow({"generations", absl::StrCat(r.old_generation(), " -> ", r.new_generation())});
  t.AddRow({"started", Ms(r.started_ms())});
  t.AddRow({"swapped", Ms(r.swapped_at_ms())});
  t.AddRow({"ended", Ms(r.ended_ms())});
  t.AddRow({"throttle", r.throttle_docs_per_s() ? absl::StrCat(r.throttle_docs_per_s(), " docs/s")
                                                : "unthrottled"});
  if (r.catch_up_passes() > 0) {
    t.AddRow({"catch-up", absl::StrCat(r.catch_up_passes(), " rounds; last ", r.remaining(),
                                       " documents in ", r.last_round_ms(), " ms at ",
                                       r.copy_rate_docs_per_s(), " docs/s; final delta estimated ",
                                       r.estimated_final_delta_ms() == UINT64_MAX
                                           ? std::string("unknown")
                                           : absl::StrCat(r.estimated_final_delta_ms(), " ms"),
                                       r.not_converging() ? " (NOT CONVERGING)" : "")});
  }
  t.AddRow({"documents (live)",
            st.estimate().stats_known() ? absl::StrCat(st.estimate().documents()) : "unknown"});
  if (r.divergent_keys_size() > 0) {
    t.AddRow({"divergent keys", absl::StrJoin(r.divergent_keys(), ",")});
  }
  for (const auto& w : r.warnings()) t.AddRow({"warning", w});
  t.Print(std::cout);
  for (const auto& e : st.events()) {
    std::cout << EventLine(e) << "\n";
  }
}

int RunStart(const StartOptions& o, const CtlContext& ctx) {
  pb::ReshardStartRequest req;
  req.set_index(o.index);
  req.set_new_shards(o.new_shards);
  req.set_throttle_docs_per_s(o.throttle);
  req.set_schedule_window(o.schedule_window);
  req.set_force(o.force);
  req.set_dry_run(o.dry_run);
  pb::ReshardStartResponse resp;
  auto stub = Stub(ctx);
  grpc::ClientContext call;
  PrepareCall(ctx, &call);
  if (auto s = CallStatus(ctx, stub->Start(&call, req, &resp)); !s.ok()) return Fail(s);
  for (const auto& w : resp.warnings()) std::cerr << "warning: " << w << "\n";
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ReshardJson(resp));
    return kExitOk;
  }
  const pb::ReshardEstimate& e = resp.estimate();
  if (o.dry_run) {
    Table t({"ESTIMATE", "VALUE"});
    t.AddRow({"shards", absl::StrCat(e.old_shards(), " -> ", e.new_shards())});
    t.AddRow({"documents", e.stats_known() ? absl::StrCat(e.documents()) : "unknown"});
    t.AddRow({"bytes", e.stats_known() ? Bytes(e.bytes()) : "unknown"});
    t.AddRow({"storage peak (all nodes)", Bytes(e.storage_peak_bytes())});
    t.AddRow({"peak node writes/s", absl::StrFormat("%.0f", e.peak_node_writes_per_s())});
    t.AddRow({"backfill throttle", absl::StrFormat("%.0f docs/s", e.backfill_docs_per_s())});
    t.AddRow({"estimated duration", absl::StrFormat("%.1f s", e.duration_s())});
    t.Print(std::cout);
    std::cout << "dry run: nothing was changed\n";
    return kExitOk;
  }
  std::cout << Line(resp.reshard()) << "\n"
            << "follow it with: miroir-ctl reshard watch --index " << resp.reshard().index()
            << "\n";
  return kExitOk;
}

template <typename Req>
using Verb = grpc::Status (pb::Reshard::Stub::*)(grpc::ClientContext*, const Req&,
                                                 pb::ReshardStatusResponse*);

template <typename Req>
int RunCall(const Req& req, Verb<Req> verb, const CtlContext& ctx) {
  pb::ReshardStatusResponse resp;
  auto stub = Stub(ctx);
  grpc::ClientContext call;
  PrepareCall(ctx, &call);
  if (auto s = CallStatus(ctx, ((*stub).*verb)(&call, req, &resp)); !s.ok()) return Fail(s);
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ReshardJson(resp));
  } else {
    PrintStatus(resp);
  }
  return kExitOk;
}

int RunVerb(const std::string& index, Verb<pb::ReshardIndexRequest> verb, const CtlContext& ctx) {
  pb::ReshardIndexRequest req;
  req.set_index(index);
  return RunCall(req, verb, ctx);
}

int RunWatch(const std::string& index, const CtlContext& ctx) {
  pb::ReshardIndexRequest req;
  req.set_index(index);
  auto stub = Stub(ctx);
  grpc::ClientContext call;
  PrepareCall(ctx, &call, /*unbounded=*/true);
  auto reader = stub->Watch(&call, req);
  const bool tty = ctx.output == OutputFormat::kTable && isatty(STDOUT_FILENO);
  pb::ReshardStatusResponse msg;
  pb::ReshardRecord last;
  std::string last_line;
  size_t events_seen = 0;
  bool got = false;
  while (reader->Read(&msg)) {
    got = true;
    last = msg.reshard();
    if (ctx.output == OutputFormat::kJson) {
      PrintJson(ReshardJson(msg));
      continue;
    }
    if (tty) {
      const uint64_t total = std::max<uint64_t>(1, msg.estimate().documents());
      const double frac = std::min(1.0, static_cast<double>(last.documents_backfilled()) / total);
      const int width = 30, filled = static_cast<int>(frac * width);
      std::cout << "\r\033[K[" << std::string(filled, '#') << std::string(width - filled, '.')
                << "] " << absl::StrFormat("%3.0f%%", frac * 100) << "  " << Line(last)
                << std::flush;
      continue;
    }
    for (; events_seen < static_cast<size_t>(msg.events_size()); ++events_seen) {
      const auto& e = msg.events(static_cast<int>(events_seen));
      std::cout << EventLine(e) << std::endl;
    }
    std::string line = Line(last);
    if (line != last_line) last_line = line;
  }
  grpc::Status st = reader->Finish();
  if (tty) std::cout << "\n";
  if (!got) return Fail(CallStatus(ctx, st));
  if (ctx.output == OutputFormat::kTable) std::cout << Line(last) << std::endl;
  const pb::ReshardState state = last.state();
  const std::string s = ReshardStateName(state);
  if (state == pb::RESHARD_DONE || state == pb::RESHARD_RETENTION ||
      state == pb::RESHARD_ROLLED_BACK) {
    return kExitOk;
  }
  if (state == pb::RESHARD_FAILED || state == pb::RESHARD_ABORTED) {
    PrintError(absl::StrCat("reshard ", last.id(), " of ", last.index(), " ended ", s,
                            last.message().empty() ? "" : ": " + last.message()));
    return kExitFailed;
  }
  if (!st.ok()) return Fail(CallStatus(ctx, st));
  PrintError(absl::StrCat("watch ended before the reshard did (state ", s, ")"));
  return kExitFailed;
}

void AddIndexVerb(CLI::App* parent, Action* action, const std::string& name,
                  const std::string& help,
                  std::function<int(const std::string&, const CtlContext&)> fn) {
  auto index = std::make_shared<std::string>();
  CLI::App* cmd = parent->add_subcommand(name, help);
  cmd->add_option("--index", *index, "Index name or alias")->required();
  cmd->callback([index, action, fn] {
    *action = [index, fn](const CtlContext& ctx) { return fn(*index, ctx); };
  });
}

}  // namespace

void AddReshardCommands(CLI::App* app, Action* action) {
  CLI::App* rs = app->add_subcommand("reshard", "Change an index's shard count online");
  rs->require_subcommand(1);
  auto o = std::make_shared<StartOptions>();
  CLI::App* start = rs->add_subcommand("start", "Start a reshard (or --dry-run: estimate only)");
  start->add_option("--index", o->index, "Index name or alias")->required();
  start->add_option("--new-shards", o->new_shards, "The new shard count S (1..65536)")->required();
  start->add_option("--throttle", o->throttle, "Backfill documents/s (0 = config default)");
  start->add_option("--schedule-window", o->schedule_window,
                    "Window name or HH:MM-HH:MM UTC for the start and the swap");
  start->add_flag("--force", o->force, "Start and swap outside the window (recorded)");
  start->add_flag("--dry-run", o->dry_run, "Print the estimate, change nothing");
  start->callback(
      [o, action] { *action = [o](const CtlContext& ctx) { return RunStart(*o, ctx); }; });
  AddIndexVerb(rs, action, "status", "The newest reshard of the index, with its events",
               [](const std::string& i, const CtlContext& c) {
                 return RunVerb(i, &pb::Reshard::Stub::Status, c);
               });
  AddIndexVerb(rs, action, "watch",
               "Follow the reshard until it settles; exit 0 done/retention/rolled back, 1 "
               "failed/aborted",
               [](const std::string& i, const CtlContext& c) { return RunWatch(i, c); });
  AddIndexVerb(rs, action, "abort", "Before the swap: drop the shadow",
               [](const std::string& i, const CtlContext& c) {
                 return RunVerb(i, &pb::Reshard::Stub::Abort, c);
               });
  AddIndexVerb(rs, action, "rollback", "After the swap: run the swap backwards, losing no write",
               [](const std::string& i, const CtlContext& c) {
                 return RunVerb(i, &pb::Reshard::Stub::Rollback, c);
               });
  AddIndexVerb(rs, action, "complete", "In retention: drop the old generation now",
               [](const std::string& i, const CtlContext& c) {
                 return RunVerb(i, &pb::Reshard::Stub::Complete, c);
               });
  auto cut = std::make_shared<pb::ReshardCutoverRequest>();
  CLI::App* cutover = rs->add_subcommand(
      "cutover",
      "Swap after the catch-up round in flight, however much it copied (a catch-up that does "
      "not converge under load; verify_before_swap and max_write_stall still apply)");
  cutover
      ->add_option_function<std::string>(
          "--index", [cut](const std::string& v) { cut->set_index(v); }, "Index name or alias")
      ->required();
  cutover->add_flag_function(
      "--force", [cut](std::int64_t n) { cut->set_force(n > 0); },
      "Required: swap before the catch-up converged");
  cutover->callback([cut, action] {
    *action = [cut](const CtlContext& ctx) {
      return RunCall(*cut, &pb::Reshard::Stub::Cutover, ctx);
    };
  });
}

}  // namespace miroir::ctl
