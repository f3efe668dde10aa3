#include "ctl/output.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace miroir::ctl {

namespace {
OutputFormat error_format = OutputFormat::kTable;  // main thread only
}  // namespace

void SetErrorFormat(OutputFormat format) { error_format = format; }

void PrintError(absl::string_view message, absl::string_view status_code, int exit_code) {
  std::string line(message);
  std::replace(line.begin(), line.end(), '\n', ' ');
  if (error_format == OutputFormat::kJson) {
    nlohmann::ordered_json err;
    if (!status_code.empty()) err["code"] = std::string(status_code);
    err["message"] = line;
    err["exit_code"] = exit_code;
    std::cerr << nlohmann::ordered_json{{"error", err}}.dump() << std::endl;
    return;
  }
  std::cerr << "error: " << line << std::endl;
}

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
      return kExitUsage;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    default:
      return kExitFailed;
  }
}

int Fail(const absl::Status& status) {
  const int code = ExitCodeFor(status);
  std::string name = absl::StatusCodeToString(status.code());
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return c == ' ' ? '_' : static_cast<char>(std::toupper(c));
  });
  PrintError(status.message(), name, code);
  return code;
}

std::string WithPrefix(absl::string_view prefix, absl::string_view message) {
  if (absl::StartsWith(message, prefix)) return std::string(message);
  return absl::StrCat(prefix, message);
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

namespace {

bool Is64Bit(const google::protobuf::FieldDescriptor* f) {
  using FD = google::protobuf::FieldDescriptor;
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT64:
    case FD::CPPTYPE_UINT64:
      return true;
    default:
      return false;
  }
}

void NumbersFor64Bit(const google::protobuf::Descriptor* d, nlohmann::ordered_json* j);

// One value of field (or map value) `f`: a message is walked, a 64-bit integer
// written as a string becomes a number.
void NumberFor64Bit(const google::protobuf::FieldDescriptor* f, nlohmann::ordered_json* v) {
  if (f->message_type() != nullptr) {
    NumbersFor64Bit(f->message_type(), v);
  } else if (Is64Bit(f) && v->is_string()) {
    const std::string text = v->get<std::string>();
    if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
      *v = std::stoull(text);
    } else {
      *v = std::stoll(text);
    }
  }
}

// proto3 JSON writes 64-bit integers as strings; ids are numbers everywhere else
// in miroir-ctl's JSON (PlanJson), so turn them back into numbers.
void NumbersFor64Bit(const google::protobuf::Descriptor* d, nlohmann::ordered_json* j) {
  if (!j->is_object()) return;
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    auto it = j->find(f->name());
    if (it == j->end()) continue;
    if (f->is_map()) {
      const google::protobuf::FieldDescriptor* value = f->message_type()->map_value();
      for (auto& [k, v] : it->items()) NumberFor64Bit(value, &v);
    } else if (f->is_repeated()) {
      if (!it->is_array()) continue;
      for (auto& v : *it) NumberFor64Bit(f, &v);
    } else {
      NumberFor64Bit(f, &*it);
    }
  }
}

}  // namespace

nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(m, &text, opts).ok()) return nullptr;
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(text);
  NumbersFor64Bit(m.GetDescriptor(), &j);
  return j;
}

std::string JoinList(const std::vector<std::string>& items, absl::string_view sep) {
  return absl::StrJoin(items, sep);
}

}  // namespace miroir::ctl
