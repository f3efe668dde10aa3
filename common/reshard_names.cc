#include "common/reshard_names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace miroir {
namespace {

constexpr absl::string_view kStatePrefix = "RESHARD_";
constexpr absl::string_view kStepPrefix = "RESHARD_STEP_";

// The lower-case tail of an enum value's name after `prefix`.
std::string Tail(const std::string& full, absl::string_view prefix) {
  if (!absl::StartsWith(full, prefix)) return "unknown";
  return absl::AsciiStrToLower(absl::string_view(full).substr(prefix.size()));
}

}  // namespace

std::string ReshardStateName(v1::ReshardState s) {
  if (s == v1::RESHARD_STATE_UNSPECIFIED) return "unknown";
  return Tail(v1::ReshardState_Name(s), kStatePrefix);
}

std::string ReshardStepName(v1::ReshardStep s) {
  if (s == v1::RESHARD_STEP_NONE) return "";
  return Tail(v1::ReshardStep_Name(s), kStepPrefix);
}

absl::StatusOr<v1::ReshardState> ParseReshardState(absl::string_view name) {
  v1::ReshardState s;
  const std::string full = absl::StrCat(kStatePrefix, absl::AsciiStrToUpper(name));
  if (!name.empty() && absl::AsciiStrToLower(name) == name && v1::ReshardState_Parse(full, &s) &&
      s != v1::RESHARD_STATE_UNSPECIFIED) {
    return s;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown reshard state '", name, "'"));
}

absl::StatusOr<v1::ReshardStep> ParseReshardStep(absl::string_view name) {
  if (name.empty()) return v1::RESHARD_STEP_NONE;
  v1::ReshardStep s;
  const std::string full = absl::StrCat(kStepPrefix, absl::AsciiStrToUpper(name));
  if (absl::AsciiStrToLower(name) == name && v1::ReshardStep_Parse(full, &s) &&
      s != v1::RESHARD_STEP_NONE) {
    return s;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown reshard step '", name, "'"));
}

int ReshardPhase(v1::ReshardState s) {
  switch (s) {
    case v1::RESHARD_SHADOW:
    case v1::RESHARD_DUAL_WRITE:
      return 1;
    case v1::RESHARD_BACKFILL:
    case v1::RESHARD_CATCHING_UP:
      return 2;
    case v1::RESHARD_VERIFY:
      return 3;
    case v1::RESHARD_SWAP_PAUSED:
    case v1::RESHARD_SWAP_FENCED:
    case v1::RESHARD_SWAP_FINAL_DELTA:
    case v1::RESHARD_ROLLING_BACK:
      return 4;
    case v1::RESHARD_RETENTION:
    case v1::RESHARD_CLEANUP:
    case v1::RESHARD_ABORTING:
      return 5;
    default:
      return 0;
  }
}

}  // namespace miroir
