// `miroir-ctl backup --out FILE`: an online, consistent copy of the
// coordinator's SQLite state (its online backup API), streamed here and written
// to FILE; restore with `miroir-coordinator --restore FILE` (docs/runbook.md).
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "ctl/commands.h"
#include "ctl/coordinator_client.h"

namespace miroir::ctl {
namespace {

int RunBackup(const std::string& out, const CtlContext& ctx) {
  std::error_code ec;
  if (std::filesystem::exists(out, ec)) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--out: ", out, " already exists (a backup never overwrites)")));
  }
  const std::string partial = out + ".partial";
  std::ofstream file(partial, std::ios::binary | std::ios::trunc);
  if (!file) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--out: cannot write ", partial)));
  }
  auto stub = NewCoordinatorStub(ctx);
  grpc::ClientContext call;
  PrepareCall(ctx, &call);
  auto reader = stub->Backup(&call, miroir::v1::BackupRequest());
  miroir::v1::BackupChunk chunk;
  uint64_t written = 0, total = 0, epoch = 0;
  while (reader->Read(&chunk)) {
    file.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    written += chunk.data().size();
    total = chunk.total_bytes();
    epoch = chunk.epoch();
  }
  grpc::Status st = reader->Finish();
  file.close();
  absl::Status failed;
  if (!st.ok()) {
    failed = CallStatus(ctx, st);
  } else if (!file || written != total || written == 0) {
    failed = absl::DataLossError(
        absl::StrCat("backup incomplete: ", written, " of ", total, " bytes written to ", partial));
  }
  if (!failed.ok()) {
    std::filesystem::remove(partial, ec);
    return Fail(failed);
  }
  std::filesystem::rename(partial, out, ec);
  if (ec) return Fail(absl::InternalError(absl::StrCat("--out: ", ec.message())));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson({{"file", out}, {"bytes", written}, {"epoch", epoch}});
  } else {
    std::cout << "backup written to " << out << ": " << written << " bytes at epoch " << epoch
              << "\nrestore with: miroir-coordinator --data-dir EMPTY_DIR --restore " << out
              << " ...\n";
  }
  return kExitOk;
}

}  // namespace

void AddBackupCommand(CLI::App* app, Action* action) {
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app->add_subcommand(
      "backup", "Copy the coordinator's state (SQLite online backup) into a local file");
  cmd->add_option("--out", *out, "File to write (must not exist)")->required();
  cmd->callback(
      [out, action] { *action = [out](const CtlContext& ctx) { return RunBackup(*out, ctx); }; });
}

}  // namespace miroir::ctl
