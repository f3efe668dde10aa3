// libFuzzer target: the worker's write-item validation (DataPlane.Write, and the
// client library before any RPC). The input is read twice: as a serialized
// WriteItem (whatever protobuf accepts), and field by field (op, index, pk,
// expiry, body) so JSON bodies and pk sizes are explored directly. Every refusal
// is INVALID_ARGUMENT naming its field; an accepted put has a JSON object body.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "miroir/v1/dataplane.pb.h"
#include "tests/fuzz/fuzz_check.h"
#include "worker/write_validation.h"

namespace {

void Check(const miroir::v1::WriteItem& item) {
  absl::Status s = miroir::ValidateWriteItem(item);
  if (s.ok()) {
    MIROIR_FUZZ_CHECK(item.has_put() || item.has_delete_(), "an accepted item has an op");
    if (item.has_put()) {
      MIROIR_FUZZ_CHECK(!item.put().body().empty() && item.put().pk().size() <= miroir::kMaxPkBytes,
                        "an accepted put has a body and a pk within the limit");
    }
    return;
  }
  MIROIR_FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument,
                    "a refused item is INVALID_ARGUMENT");
  const absl::string_view m = s.message();
  MIROIR_FUZZ_CHECK(m.rfind("index:", 0) == 0 || m.rfind("pk:", 0) == 0 ||
                        m.rfind("body:", 0) == 0 || m.rfind("expires_at_ms:", 0) == 0 ||
                        m.rfind("op:", 0) == 0,
                    "a refusal starts with the field it names");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  miroir::v1::WriteItem parsed;
  if (parsed.ParseFromArray(data, static_cast<int>(size))) Check(parsed);

  FuzzedDataProvider in(data, size);
  miroir::v1::WriteItem item;
  const bool put = in.ConsumeBool();
  const std::string index = in.ConsumeRandomLengthString(32);
  const std::string pk = in.ConsumeRandomLengthString(600);
  if (put) {
    item.mutable_put()->set_index(index);
    item.mutable_put()->set_pk(pk);
    item.mutable_put()->set_expires_at_ms(in.ConsumeIntegral<int64_t>());
    item.mutable_put()->set_body(in.ConsumeRemainingBytesAsString());
  } else {
    item.mutable_delete_()->set_index(index);
    item.mutable_delete_()->set_pk(pk);
  }
  item.set_after_version(in.ConsumeIntegral<uint64_t>());
  Check(item);
  return 0;
}
