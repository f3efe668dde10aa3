// `miroir-ctl verify --index I [--wait] [--max-duration D]` and
// `miroir-ctl verify status [ID]`: verify runs on the coordinator as a tracked
// operation (StartVerify / GetVerify, coordinator/verify_ops.h). `verify` starts
// it and prints its id at once; `--wait` follows it to the end (the old
// one-call behaviour, now bounded by the operation, not by one call).
// Exit codes of an ended operation: 0 every shard compared and consistent; 1
// divergent shards (or the operation failed); 3 did not finish (some shard was
// not compared: nothing is known about it; run it again).
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/duration.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"

namespace miroir::ctl {
namespace {

using miroir::v1::Coordinator;
using miroir::v1::VerifyOperation;

struct VerifyOptions {
  std::string index;
  bool wait = false;
  std::string max_duration;
  uint64_t status_id = 0;
};

std::string Summary(const VerifyOperation& op) {
  std::string s = absl::StrCat(
      "verify ", op.id(), " of ", op.index(), " (generation ", op.generation(), "): ", op.state(),
      ", ", op.done(), "/", op.total(), " shards settled, ", op.divergent(), " divergent (",
      op.divergent_keys(), " divergent keys), ", op.unfinished(), " did not finish");
  if (!op.message().empty()) absl::StrAppend(&s, ": ", op.message());
  return s;
}

// 0 running or clean, 1 divergent or failed, 3 did not finish.
int ExitFor(const VerifyOperation& op) {
  if (op.state() == "failed") return kExitFailed;
  if (op.state() == "did_not_finish") return kExitUnreachable;
  if (op.divergent() > 0) return kExitFailed;
  return kExitOk;
}

void PrintVerdicts(const VerifyOperation& op) {
  Table t({"SHARD", "CONSISTENT", "NODE", "DOCUMENTS", "DIGEST", "NOTE"});
  for (const auto& v : op.shards()) {
    if (!v.finished()) {
      t.AddRow({absl::StrCat(v.shard()), "unknown", absl::StrJoin(v.nodes(), ","), "-", "-",
                absl::StrCat("did not finish: ", v.error())});
      continue;
    }
    // Consistent shards take one line; divergent ones list every owner.
    if (v.consistent()) {
      t.AddRow({absl::StrCat(v.shard()), "yes", absl::StrJoin(v.nodes(), ","),
                v.documents().empty() ? "-" : absl::StrCat(v.documents(0)),
                v.digests().empty() ? "-" : v.digests(0), ""});
      continue;
    }
    for (int i = 0; i < v.nodes_size(); ++i) {
      t.AddRow({absl::StrCat(v.shard()), "NO", v.nodes(i),
                i < v.documents_size() ? absl::StrCat(v.documents(i)) : "-",
                i < v.digests_size() ? v.digests(i) : "-",
                i == 0 && !v.divergent_keys().empty()
                    ? absl::StrCat("keys: ", absl::StrJoin(v.divergent_keys(), ","))
                    : ""});
    }
  }
  t.Print(std::cout);
}

// The end of an operation: verdicts, summary, the error line, the exit code.
int Report(const VerifyOperation& op, const CtlContext& ctx) {
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(op));
  } else {
    if (op.state() != "running") PrintVerdicts(op);
    std::cout << Summary(op) << "\n";
  }
  const int code = op.state() == "running" ? kExitOk : ExitFor(op);
  if (code == kExitUnreachable) {
    PrintError(
        absl::StrCat("verify ", op.id(), " of ", op.index(), " did not finish: ", op.unfinished(),
                     " of ", op.total(), " shard(s) not compared (not a divergence; run it again)"),
        "", code);
  } else if (code == kExitFailed && op.state() == "failed") {
    PrintError(absl::StrCat("verify ", op.id(), " of ", op.index(), " failed: ", op.message()), "",
               code);
  } else if (code == kExitFailed) {
    std::vector<std::string> divergent;
    for (const auto& v : op.shards()) {
      if (v.finished() && !v.consistent()) divergent.push_back(absl::StrCat(v.shard()));
    }
    PrintError(absl::StrCat("index ", op.index(), ": ", divergent.size(),
                            " divergent shard(s): ", absl::StrJoin(divergent, ", ")),
               "", code);
  }
  return code;
}

absl::StatusOr<VerifyOperation> Get(uint64_t id, const CtlContext& ctx) {
  miroir::v1::GetVerifyRequest req;
  req.set_id(id);
  miroir::v1::GetVerifyResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::GetVerify, req, &resp); !s.ok()) return s;
  if (resp.operations_size() != 1) {
    return absl::NotFoundError(absl::StrCat("id: unknown verify operation ", id));
  }
  return resp.operations(0);
}

int RunStart(const VerifyOptions& o, const CtlContext& ctx) {
  if (o.index.empty()) {
    return Fail(absl::InvalidArgumentError("--index is required (or: verify status [ID])"));
  }
  miroir::v1::StartVerifyRequest req;
  req.set_index(o.index);
  if (!o.max_duration.empty()) {
    auto d = ParseDuration(o.max_duration);
    if (!d.ok()) {
      return Fail(
          absl::InvalidArgumentError(absl::StrCat("--max-duration: ", d.status().message())));
    }
    if (*d <= absl::ZeroDuration()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--max-duration must be positive, got '", o.max_duration, "'")));
    }
    req.set_timeout_ms(absl::ToInt64Milliseconds(*d));
  }
  VerifyOperation op;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::StartVerify, req, &op); !s.ok()) {
    return Fail(s);
  }
  if (!o.wait) {
    if (ctx.output == OutputFormat::kJson) {
      PrintJson(ProtoToJson(op));
    } else {
      std::cout << "verify " << op.id() << " of " << op.index() << " started: " << op.total()
                << " shards; follow it with: miroir-ctl verify status " << op.id() << "\n";
    }
    return kExitOk;
  }
  // Follow it: each poll is one bounded call; the whole wait is bounded by
  // --timeout when given, else by the operation's own deadline (it ends then).
  const absl::Time until = ctx.timeout_set
                               ? absl::Now() + ctx.timeout
                               : absl::FromUnixMillis(op.deadline_ms()) + absl::Seconds(30);
  while (op.state() == "running") {
    if (absl::Now() >= until) {
      PrintError(
          absl::StrCat("verify ", op.id(), " still running after --timeout (", op.done(), "/",
                       op.total(), " shards settled); follow it with: miroir-ctl verify status ",
                       op.id()),
          "DEADLINE_EXCEEDED", kExitUnreachable);
      return kExitUnreachable;
    }
    absl::SleepFor(absl::Milliseconds(200));
    auto next = Get(op.id(), ctx);
    if (!next.ok()) return Fail(next.status());
    op = *next;
  }
  return Report(op, ctx);
}

int RunStatus(uint64_t id, const CtlContext& ctx) {
  if (id != 0) {
    auto op = Get(id, ctx);
    if (!op.ok()) return Fail(op.status());
    return Report(*op, ctx);
  }
  miroir::v1::GetVerifyRequest req;
  miroir::v1::GetVerifyResponse resp;
  if (auto s = CallCoordinator(ctx, &Coordinator::Stub::GetVerify, req, &resp); !s.ok()) {
    return Fail(s);
  }
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ProtoToJson(resp)["operations"]);
    return kExitOk;
  }
  Table t({"ID", "INDEX", "STATE", "SETTLED", "DIVERGENT", "DID_NOT_FINISH", "STARTED"});
  for (const auto& op : resp.operations()) {
    t.AddRow({absl::StrCat(op.id()), op.index(), op.state(),
              absl::StrCat(op.done(), "/", op.total()), absl::StrCat(op.divergent()),
              absl::StrCat(op.unfinished()),
              absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(op.started_ms()),
                               absl::UTCTimeZone())});
  }
  t.Print(std::cout);
  return kExitOk;
}

}  // namespace

void AddVerifyCommand(CLI::App* app, Action* action) {
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* cmd = app->add_subcommand(
      "verify",
      "Start a verify of an index (every shard's owners agree: count + digest) and print its "
      "id; --wait follows it: exit 0 consistent, 1 divergent, 3 did not finish");
  cmd->add_option("--index", o->index, "Index name or alias");
  cmd->add_flag("--wait", o->wait,
                "Follow the operation to its end and print every shard's verdict (bounded by "
                "--timeout when given, else by --max-duration)");
  cmd->add_option("--max-duration", o->max_duration,
                  "The operation ends did_not_finish after this, e.g. 30m (default 1h)");
  CLI::App* status = cmd->add_subcommand(
      "status",
      "One verify operation (ID: its verdicts; exit 0 running or consistent, 1 divergent, 3 "
      "did not finish) or the newest 20");
  status->add_option("ID,--id", o->status_id, "Operation id (positional, or --id)");
  status->callback([o, action] {
    *action = [o](const CtlContext& ctx) { return RunStatus(o->status_id, ctx); };
  });
  cmd->callback([o, action, status] {
    if (status->parsed()) return;  // `verify status` chose its action
    *action = [o](const CtlContext& ctx) { return RunStart(*o, ctx); };
  });
}

}  // namespace miroir::ctl
