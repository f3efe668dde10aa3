#include "coordinator/etcd_layout.h"

#include <zlib.h>

#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/state_store.h"
#include "miroir/v1/etcd_state.pb.h"

namespace miroir::coordinator {
namespace {

// FNV-1a: stable across builds and machines (the bucket of an id is on disk).
uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

int EtcdLayout::BucketsOf(const std::string& kind) {
  if (kind == kKindShardRoute || kind == kKindMove || kind == kKindTask || kind == kKindAePass) {
    return 16;
  }
  return 2;
}

std::string EtcdLayout::BucketKey(const std::string& kind, const std::string& id) const {
  const uint64_t b = Fnv1a(id) % static_cast<uint64_t>(BucketsOf(kind));
  return absl::StrFormat("%s/obj/%s/%03d", prefix_, kind, b);
}

std::string EtcdLayout::EventKey(uint64_t seq) const {
  return absl::StrFormat("%s/ev/%020d", prefix_, seq);
}

std::string EtcdLayout::AuditKey(uint64_t seq) const {
  return absl::StrFormat("%s/audit/%020d", prefix_, seq);
}

absl::StatusOr<uint64_t> EtcdLayout::EventSeq(const std::string& key) const {
  const std::string p = key.rfind(AuditPrefix(), 0) == 0 ? AuditPrefix() : EventsPrefix();
  uint64_t seq = 0;
  if (key.compare(0, p.size(), p) != 0 || !absl::SimpleAtoi(key.substr(p.size()), &seq)) {
    return absl::InvalidArgumentError(absl::StrCat("not an event key: ", key));
  }
  return seq;
}

absl::StatusOr<std::string> EtcdLayout::BucketKind(const std::string& key) const {
  const std::string p = ObjectsPrefix();
  const size_t slash = key.rfind('/');
  if (key.compare(0, p.size(), p) != 0 || slash == std::string::npos || slash < p.size()) {
    return absl::InvalidArgumentError(absl::StrCat("not a bucket key: ", key));
  }
  return key.substr(p.size(), slash - p.size());
}

std::string EtcdLayout::RangeEnd(const std::string& p) {
  std::string end = p;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

// A bucket value: kBucketFormat, the serialized v1::EtcdBucket's size (8 bytes,
// little endian), then that serialization deflated. Routes and moves repeat
// group and node names: deflate is what lets a whole S = 4096 table fit one
// etcd request.
constexpr char kBucketFormat = 'z';

std::string EncodeBucket(const BucketObjects& objects) {
  v1::EtcdBucket b;
  for (const auto& [id, value] : objects) {
    auto* e = b.add_entries();
    e->set_id(id);
    e->set_value(value);
  }
  const std::string raw = b.SerializeAsString();
  uLongf len = compressBound(raw.size());
  std::string out(9 + len, '\0');
  out[0] = kBucketFormat;
  uint64_t n = raw.size();
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>((n >> (8 * i)) & 0xff);
  compress2(reinterpret_cast<Bytef*>(out.data() + 9), &len,
            reinterpret_cast<const Bytef*>(raw.data()), raw.size(), Z_BEST_SPEED);
  out.resize(9 + len);
  return out;
}

absl::StatusOr<BucketObjects> DecodeBucket(const std::string& bytes) {
  if (bytes.size() < 9 || bytes[0] != kBucketFormat) {
    return absl::DataLossError("etcd bucket: unknown format");
  }
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{static_cast<unsigned char>(bytes[1 + i])} << (8 * i);
  if (n > (uint64_t{1} << 31)) return absl::DataLossError("etcd bucket: size out of range");
  std::string raw(n, '\0');
  uLongf len = n;
  if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &len,
                 reinterpret_cast<const Bytef*>(bytes.data() + 9), bytes.size() - 9) != Z_OK ||
      len != n) {
    return absl::DataLossError("etcd bucket: does not inflate");
  }
  v1::EtcdBucket b;
  if (!b.ParseFromString(raw)) return absl::DataLossError("etcd bucket does not parse");
  BucketObjects out;
  for (const auto& e : b.entries()) out[e.id()] = e.value();
  return out;
}

absl::Status CheckTxnFits(int ops, int64_t bytes) {
  if (ops > kEtcdMaxTxnOps) {
    return absl::FailedPreconditionError(absl::StrCat(
        "commit needs ", ops, " operations in one etcd transaction, above etcd's --max-txn-ops (",
        kEtcdMaxTxnOps, ")"));
  }
  if (bytes + kEtcdRequestOverheadBytes > kEtcdMaxRequestBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "commit of ", bytes,
        " bytes does not fit one etcd transaction: etcd's --max-request-bytes is ",
        kEtcdMaxRequestBytes, " (", kEtcdRequestOverheadBytes, " kept for keys and compares)"));
  }
  return absl::OkStatus();
}

}  // namespace miroir::coordinator
