// Validation of one client write item (DESIGN §4 step 1). Pure; any thread.
#ifndef MIROIR_WORKER_WRITE_VALIDATION_H_
#define MIROIR_WORKER_WRITE_VALIDATION_H_

#include <string>

#include "absl/status/status.h"
#include "miroir/v1/dataplane.pb.h"

namespace miroir {

inline constexpr size_t kMaxPkBytes = 511;
inline constexpr const char* kReservedFieldPrefix = "_miroir_";

// A primary key: 1..511 bytes. INVALID_ARGUMENT naming `pk`.
absl::Status ValidatePk(const std::string& pk);
// A body: a JSON object with no top-level "_miroir_*" field. INVALID_ARGUMENT
// naming `body`.
absl::Status ValidateBody(const std::string& body);
// The whole item: an op is set, index non-empty, pk and (for a put) body valid,
// expires_at_ms not negative.
absl::Status ValidateWriteItem(const v1::WriteItem& item);

}  // namespace miroir

#endif  // MIROIR_WORKER_WRITE_VALIDATION_H_
