#include "worker/write_validation.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace miroir {

absl::Status ValidatePk(const std::string& pk) {
  if (pk.empty()) return absl::InvalidArgumentError("pk: must not be empty");
  if (pk.size() > kMaxPkBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("pk: ", pk.size(), " bytes is over the limit of ", kMaxPkBytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateBody(const std::string& body) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("body: malformed JSON");
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("body: must be a JSON object, got ", doc.type_name()));
  }
  for (const auto& [key, value] : doc.items()) {
    if (absl::StartsWith(key, kReservedFieldPrefix)) {
      return absl::InvalidArgumentError(
          absl::StrCat("body: field '", key, "' is reserved (_miroir_* fields are not allowed)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateWriteItem(const v1::WriteItem& item) {
  switch (item.op_case()) {
    case v1::WriteItem::kPut: {
      const auto& p = item.put();
      if (p.index().empty()) return absl::InvalidArgumentError("index: must not be empty");
      if (auto s = ValidatePk(p.pk()); !s.ok()) return s;
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
