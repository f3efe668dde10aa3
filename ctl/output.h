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

// Exit codes (CLI.md): done; failed or refused; usage or invalid input.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

enum class OutputFormat { kTable, kJson };

// Global flags, resolved after parsing.
struct CtlContext {
  std::string coordinator = "127.0.0.1:7400";
  OutputFormat output = OutputFormat::kTable;
  absl::Duration timeout = absl::Seconds(10);
  bool timeout_set = false;  // --timeout given explicitly (bounds `plan watch` too)
};

// Prints "error: MSG" on one line to stderr (newlines in MSG become spaces).
void PrintError(absl::string_view message);

// INVALID_ARGUMENT (bad input, also from the server) -> 2; anything else -> 1.
int ExitCodeFor(const absl::Status& status);

// PrintError(status.message()) and ExitCodeFor(status).
int Fail(const absl::Status& status);

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

// A protobuf message as JSON (proto field names, defaults printed; 64-bit
// integers are strings, as proto3 JSON specifies).
nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& m);

// "a,b,c".
std::string JoinList(const std::vector<std::string>& items, absl::string_view sep = ",");

}  // namespace miroir::ctl

#endif  // MIROIR_CTL_OUTPUT_H_
