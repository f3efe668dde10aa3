#include "common/digest.h"

#include <xxhash.h>

#include <cstring>
#include <string>

#include "absl/strings/str_format.h"

namespace miroir {
namespace {

void AppendLe64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

uint64_t BodyHash(std::string_view body) { return XXH64(body.data(), body.size(), 0); }

uint64_t EntryHash(std::string_view pk, uint64_t hlc, uint64_t writer, bool tombstone,
                   std::string_view body) {
  std::string buf(pk);
  buf.push_back('\0');
  AppendLe64(&buf, hlc);
  AppendLe64(&buf, writer);
  if (tombstone) {
    buf.push_back('T');
  } else {
    buf.push_back('D');
    AppendLe64(&buf, BodyHash(body));
  }
  return XXH64(buf.data(), buf.size(), 0);
}

void ShardDigest::Add(std::string_view pk, uint64_t hlc, uint64_t writer, bool tombstone,
                      std::string_view body) {
  xor_ ^= EntryHash(pk, hlc, writer, tombstone, body);
  if (tombstone) {
    ++tombstones_;
  } else {
    ++documents_;
  }
}

uint64_t ShardDigest::value() const {
  if (documents_ == 0 && tombstones_ == 0) return 0;
  std::string buf;
  AppendLe64(&buf, xor_);
  AppendLe64(&buf, documents_);
  AppendLe64(&buf, tombstones_);
  return XXH64(buf.data(), buf.size(), 0);
}

std::string ShardDigest::Hex() const { return absl::StrFormat("%016x", value()); }

}  // namespace miroir
