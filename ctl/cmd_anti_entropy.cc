// `miroir-ctl anti-entropy run [--index I] [--shards A-B] [--report-only] [--no-wait]`
// and `miroir-ctl anti-entropy status`: clients of miroir.v1.AntiEntropy
// (docs/anti-entropy.md). `run` waits for the run to finish (bounded by
// --timeout when given) and exits 1 when a report-only run found mismatches or a
// pass failed.
#include <iostream>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/grpc_server.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"
#include "miroir/v1/anti_entropy.grpc.pb.h"

namespace miroir::ctl {
namespace {

namespace pb = ::miroir::v1;

struct RunOptions {
  std::string index;
  std::string shards;  // "A-B" or "A"
  bool report_only = false;
  bool no_wait = false;
};

// "A-B" or "A" into the request; INVALID_ARGUMENT naming --shards otherwise.
absl::Status ParseShards(const std::string& text, pb::AntiEntropyRunRequest* req) {
  if (text.empty()) return absl::OkStatus();
  std::vector<std::string> parts = absl::StrSplit(text, '-');
  uint32_t from = 0, to = 0;
  if (parts.size() > 2 || !absl::SimpleAtoi(parts[0], &from) ||
      !absl::SimpleAtoi(parts.size() == 2 ? parts[1] : parts[0], &to)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shards: '", text, "' is not a shard or a range A-B"));
  }
  if (from > to) {
    return absl::InvalidArgumentError(absl::StrCat("--shards: range ", text, " is reversed"));
  }
  req->set_has_shards(true);
  req->set_shard_from(from);
  req->set_shard_to(to);
  return absl::OkStatus();
}

absl::Status Call(const CtlContext& ctx, const pb::AntiEntropyStatusRequest& req,
                  pb::AntiEntropyStatusResponse* resp) {
  auto stub = pb::AntiEntropy::NewStub(NewCoordinatorChannel(ctx));
  grpc::ClientContext call;
  PrepareCall(ctx, &call);
  return CallStatus(ctx, stub->Status(&call, req, resp));
}

std::string Ms(int64_t unix_ms) {
  return unix_ms == 0 ? "-"
                      : absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms),
                                         absl::UTCTimeZone());
}

void PrintPasses(const pb::AntiEntropyStatusResponse& st) {
  Table t({"INDEX", "GEN", "SHARD", "RUN", "FINISHED", "MODE", "REPLICAS", "MISMATCHES", "REPAIRED",
           "CONFLICTS", "PURGED", "NOTE"});
  for (const auto& p : st.passes()) {
    t.AddRow({p.index(), absl::StrCat(p.generation()), absl::StrCat(p.shard()),
              absl::StrCat(p.run_id()), Ms(p.finished_ms()),
              p.skipped()  ? "skipped"
              : p.repair() ? "repair"
                           : "report",
              absl::StrCat(p.replicas_reached()), absl::StrCat(p.mismatches()),
              absl::StrCat(p.repaired()), absl::StrCat(p.conflicts()),
              absl::StrCat(p.purged_tombstones()),
              !p.error().empty() ? p.error() : absl::StrJoin(p.divergent_keys(), ",")});
  }
  t.Print(std::cout);
}

std::string RunLine(const pb::AntiEntropyRun& r) {
  return absl::StrCat("run ", r.id(), r.scheduled() ? " (scheduled)" : "",
                      r.started_by().empty() ? "" : absl::StrCat(" (by ", r.started_by(), ")"),
                      r.repair() ? "" : " (report only)", ": ", r.done(), "/", r.total(),
                      " passed, ", r.failed(), " failed, ", r.skipped(), " skipped, ",
                      r.mismatches(), " mismatches, ", r.repaired(), " repaired",
                      r.finished_ms() == 0 ? " (running)" : "");
}

int RunRun(const RunOptions& o, const CtlContext& ctx) {
  pb::AntiEntropyRunRequest req;
  req.set_index(o.index);
  req.set_report_only(o.report_only);
  if (auto s = ParseShards(o.shards, &req); !s.ok()) return Fail(s);
  pb::AntiEntropyRunResponse started;
  {
    auto stub = pb::AntiEntropy::NewStub(NewCoordinatorChannel(ctx));
    grpc::ClientContext call;
    PrepareCall(ctx, &call);
    if (auto s = CallStatus(ctx, stub->Run(&call, req, &started)); !s.ok()) return Fail(s);
  }
  const uint64_t id = started.run().id();
  if (o.no_wait) {
    if (ctx.output == OutputFormat::kJson) {
      PrintJson(ProtoToJson(started));
    } else {
      std::cout << "anti-entropy run " << id << " started: " << started.run().total()
                << " shards\n";
    }
    return kExitOk;
  }
  // Wait for the run to finish: bounded by --timeout when given, else one hour.
  const absl::Time deadline = absl::Now() + (ctx.timeout_set ? ctx.timeout : absl::Hours(1));
  pb::AntiEntropyStatusRequest sreq;
  sreq.set_run_id(id);
  pb::AntiEntropyStatusResponse st;
  while (true) {
    if (auto s = Call(ctx, sreq, &st); !s.ok()) return Fail(s);
    if (st.runs_size() == 1 && st.runs(0).finished_ms() != 0) break;
    if (absl::Now() >= deadline) {
      // Not a failure of the run (it goes on): exit 3, as `verify --wait`.
      PrintError(absl::StrCat("anti-entropy run ", id, " did not finish in time (",
                              st.runs_size() == 1 ? RunLine(st.runs(0)) : "no such run",
                              "); follow it with: miroir-ctl anti-entropy status"),
                 "DEADLINE_EXCEEDED", kExitUnreachable);
      return kExitUnreachable;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  const pb::AntiEntropyRun& run = st.runs(0);
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(st));
  } else {
    PrintPasses(st);
    std::cout << RunLine(run) << "\n";
  }
  if (run.failed() > 0) {
    PrintError(absl::StrCat("anti-entropy run ", id, ": ", run.failed(), " pass(es) failed"));
    return kExitFailed;
  }
  if (!run.repair() && run.mismatches() > 0) {
    PrintError(absl::StrCat("anti-entropy run ", id, " (report only): ", run.mismatches(),
                            " mismatch(es) found, nothing repaired"));
    return kExitFailed;
  }
  return kExitOk;
}

int RunStatus(const CtlContext& ctx) {
  pb::AntiEntropyStatusResponse st;
  if (auto s = Call(ctx, pb::AntiEntropyStatusRequest(), &st); !s.ok()) return Fail(s);
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(st));
    return kExitOk;
  }
  std::cout << "anti-entropy " << (st.enabled() ? "enabled, " + st.schedule() : "disabled")
            << (st.next_scheduled_ms() ? ", next round " + Ms(st.next_scheduled_ms()) : "") << "\n";
  for (const auto& r : st.runs()) std::cout << RunLine(r) << "\n";
  PrintPasses(st);
  return kExitOk;
}

}  // namespace

void AddAntiEntropyCommands(CLI::App* app, Action* action) {
  CLI::App* ae = app->add_subcommand("anti-entropy", "Anti-entropy runs and their results");
  ae->require_subcommand(1);
  auto o = std::make_shared<RunOptions>();
  CLI::App* run = ae->add_subcommand(
      "run", "Pass over shards now and wait; exit 1 if a report-only run finds mismatches");
  run->add_option("--index", o->index, "Index name or alias (default: every index)");
  run->add_option("--shards", o->shards, "Shard range A-B (or one shard A); needs --index");
  run->add_flag("--report-only", o->report_only, "Find divergence, repair nothing");
  run->add_flag("--no-wait", o->no_wait, "Start the run and return");
  run->callback([o, action] { *action = [o](const CtlContext& ctx) { return RunRun(*o, ctx); }; });
  CLI::App* status = ae->add_subcommand("status", "Runs and the last pass of every shard");
  status->callback([action] { *action = [](const CtlContext& ctx) { return RunStatus(ctx); }; });
}

}  // namespace miroir::ctl
