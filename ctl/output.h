// What every miroir-ctl command shares for printing: the exit codes of CLI.md,
// one-line errors on stderr, aligned tables, JSON. Called from main's thread only.
#ifndef MIROIR_CTL_OUTPUT_H_
#define MIROIR_CTL_OUTPUT_H_

#include <google/protobuf/message.h>

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace miroir::ctl {

// Exit codes (CLI.md, docs/cli.md "Exit codes"): done; failed or refused (a
// gate, a conflict, a divergence, an unknown id, a check that found problems);
// usage or invalid input; unreachable (the coordinator, or a worker or node it
// needed, did not answer in time: retrying may succeed without any change).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

enum class OutputFormat { kTable, kJson };

// Global flags, resolved after parsing.
struct CtlContext {
  std::string coordinator = "127.0.0.1:7400";  // one address (the leader of a list)
  OutputFormat output = OutputFormat::kTable;
  absl::Duration timeout = absl::Seconds(10);
  bool timeout_set = false;  // --timeout given explicitly (bounds `plan watch` too)
  // With a list of coordinators none of which named a leader: why, as the
  // standbys saw it (added to an UNAVAILABLE error). "" otherwise.
  std::string no_leader;
};

// How errors are printed: set once from --output after parsing (main thread).
void SetErrorFormat(OutputFormat format);

// Prints "error: MSG" on one line to stderr (newlines in MSG become spaces); under
// --output json the line is {"error":{"code":"FAILED_PRECONDITION","message":MSG,
// "exit_code":1}} instead (`status_code` "" leaves "code" out).
void PrintError(absl::string_view message, absl::string_view status_code = "", int exit_code = 1);

// INVALID_ARGUMENT (bad input, also from the server) -> 2; UNAVAILABLE and
// DEADLINE_EXCEEDED (nothing answered in time) -> 3; anything else -> 1.
int ExitCodeFor(const absl::Status& status);

// PrintError of the status and ExitCodeFor(status).
int Fail(const absl::Status& status);

// `message` with `prefix` in front unless it already starts with it (the server's
// gates word their refusals "plan refused: ..." themselves).
std::string WithPrefix(absl::string_view prefix, absl::string_view message);

// A left-aligned text table with a header row; columns separated by two spaces.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// One JSON document on one line of stdout.
void PrintJson(const nlohmann::ordered_json& j);

// A protobuf message as JSON (proto field names, defaults printed). 64-bit
// integers are JSON numbers (not proto3 JSON's strings), so an id has one type in
// every command's output.
nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& m);

// "a,b,c".
std::string JoinList(const std::vector<std::string>& items, absl::string_view sep = ",");

}  // namespace miroir::ctl

#endif  // MIROIR_CTL_OUTPUT_H_
