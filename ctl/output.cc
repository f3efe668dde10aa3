#include "ctl/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace miroir::ctl {

void PrintError(absl::string_view message) {
  std::string line(message);
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::cerr << "error: " << line << std::endl;
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

int Fail(const absl::Status& status) {
  PrintError(status.message());
  return ExitCodeFor(status);
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();  // empty last cells
    out << line << "\n";
  };
  print(header_);
  for (const auto& r : rows_) print(r);
}

void PrintJson(const nlohmann::ordered_json& j) { std::cout << j.dump() << std::endl; }

nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(m, &text, opts).ok()) return nullptr;
  return nlohmann::ordered_json::parse(text);
}

std::string JoinList(const std::vector<std::string>& items, absl::string_view sep) {
  return absl::StrJoin(items, sep);
}

}  // namespace miroir::ctl
