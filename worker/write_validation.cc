#include "worker/write_validation.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace miroir {

absl::Status ValidatePk(const std::string& pk) {
  if (pk.empty()) return absl::InvalidArgumentError("pk: must not be empty");
  if (pk.size() > kMaxPkBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("pk: ", pk.size(), " bytes is over the limit of ", kMaxPkBytes));
  }
  return absl::OkStatus();
}

namespace {

// SAX handler: checks the root is an object and no top-level key is reserved,
// without building a DOM (the body is only forwarded, never inspected again).
class BodyChecker : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return Value("null"); }
  bool boolean(bool) override { return Value("boolean"); }
  bool number_integer(number_integer_t) override { return Value("number"); }
  bool number_unsigned(number_unsigned_t) override { return Value("number"); }
  bool number_float(number_float_t, const string_t&) override { return Value("number"); }
  bool string(string_t&) override { return Value("string"); }
  bool binary(binary_t&) override { return Value("binary"); }
  bool start_object(std::size_t) override {
    ++depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1 && absl::StartsWith(k, kReservedFieldPrefix)) {
      error_ = absl::InvalidArgumentError(
          absl::StrCat("body: field '", k, "' is reserved (_miroir_* fields are not allowed)"));
      return false;
    }
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) return Value("array");
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    if (error_.ok()) error_ = absl::InvalidArgumentError("body: malformed JSON");
    return false;
  }
  absl::Status status() const { return error_; }

 private:
  bool Value(const char* type) {
    if (depth_ > 0) return true;
    error_ = absl::InvalidArgumentError(absl::StrCat("body: must be a JSON object, got ", type));
    return false;
  }
  int depth_ = 0;
  absl::Status error_;
};

}  // namespace

absl::Status ValidateBody(const std::string& body) {
  BodyChecker checker;
  const bool ok = nlohmann::json::sax_parse(body, &checker);
  if (!checker.status().ok()) return checker.status();
  if (!ok) return absl::InvalidArgumentError("body: malformed JSON");
  return absl::OkStatus();
}

absl::Status ValidateWriteItem(const v1::WriteItem& item) {
  switch (item.op_case()) {
    case v1::WriteItem::kPut: {
      const auto& p = item.put();
      if (p.index().empty()) return absl::InvalidArgumentError("index: must not be empty");
      MIROIR_RETURN_IF_ERROR(ValidatePk(p.pk()));
      if (p.expires_at_ms() < 0) {
        return absl::InvalidArgumentError("expires_at_ms: must not be negative");
      }
      return ValidateBody(p.body());
    }
    case v1::WriteItem::kDelete: {
      const auto& d = item.delete_();
      if (d.index().empty()) return absl::InvalidArgumentError("index: must not be empty");
      return ValidatePk(d.pk());
    }
    default:
      return absl::InvalidArgumentError("op: neither put nor delete is set");
  }
}

}  // namespace miroir
