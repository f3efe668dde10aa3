#include "coordinator/state_upgrade.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/reshard_names.h"
#include "coordinator/reshard_machine.h"
#include "google/protobuf/unknown_field_set.h"

namespace miroir::coordinator {
namespace {

// Field numbers of ReshardRecord before the enums (reserved in reshard.proto).
constexpr int kLegacyState = 7;
constexpr int kLegacyFailedFrom = 8;
constexpr int kLegacyStep = 34;
// The node of the fence entry that marked an abort's reconciliation done.
constexpr char kLegacyReconciledMarker[] = "reconciled";

// The last string the record holds under field `number` (as proto3 parsing
// keeps it: the last one wins), if any.
std::optional<std::string> LegacyString(const google::protobuf::UnknownFieldSet& fields,
                                        int number) {
  std::optional<std::string> out;
  for (int i = 0; i < fields.field_count(); ++i) {
    const google::protobuf::UnknownField& f = fields.field(i);
    if (f.number() == number && f.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
      out = f.length_delimited();
    }
  }
  return out;
}

absl::Status Bad(const v1::ReshardRecord& r, const char* field, const absl::Status& why) {
  return absl::DataLossError(
      absl::StrCat("state store: reshard ", r.id(), " ", field, ": ", why.message()));
}

}  // namespace

absl::Status UpgradeReshardRecord(v1::ReshardRecord* r) {
  const google::protobuf::UnknownFieldSet& unknown = r->GetReflection()->GetUnknownFields(*r);
  v1::ReshardRecord out = *r;
  if (auto text = LegacyString(unknown, kLegacyState)) {
    auto s = ParseReshardState(*text);
    if (!s.ok()) return Bad(*r, "state", s.status());
    out.set_state(*s);
  }
  if (auto text = LegacyString(unknown, kLegacyFailedFrom)) {
    // An empty failed_from was read as shadow before the enums.
    auto s = text->empty() ? absl::StatusOr<v1::ReshardState>(v1::RESHARD_SHADOW)
                           : ParseReshardState(*text);
    if (!s.ok()) return Bad(*r, "failed_from", s.status());
    out.set_failed_from(*s);
  }
  if (auto text = LegacyString(unknown, kLegacyStep)) {
    auto s = ParseReshardStep(*text);
    if (!s.ok()) return Bad(*r, "step", s.status());
    out.set_step(*s);
  }
  google::protobuf::UnknownFieldSet* rest = out.GetReflection()->MutableUnknownFields(&out);
  for (int number : {kLegacyState, kLegacyFailedFrom, kLegacyStep}) rest->DeleteByNumber(number);
  if (!ReshardMachine::IsKnown(out.state())) {
    return absl::DataLossError(absl::StrCat("state store: reshard ", r->id(), " has state ",
                                            static_cast<int>(out.state()),
                                            ", which this version does not know"));
  }
  *r = std::move(out);
  return absl::OkStatus();
}

void UpgradeMove(v1::Move* m) {
  auto* fences = m->mutable_fences();
  for (int i = fences->size() - 1; i >= 0; --i) {
    if (fences->Get(i).node() != kLegacyReconciledMarker) continue;
    fences->DeleteSubrange(i, 1);
    m->set_abort_reconciled(true);
  }
}

}  // namespace miroir::coordinator
