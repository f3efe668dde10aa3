#include "worker/stores/redis_store.h"

#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "common/tls.h"
#include "worker/stores/redis_scripts.h"

namespace miroir {
namespace {

constexpr size_t kMutationsPerScript = 256;
constexpr int kDeleteChunk = 1000;

std::vector<LuaScript> AllScripts() {
  std::vector<LuaScript> s(redis_scripts::kCount);
  s[redis_scripts::kApply] = {"apply", redis_scripts::kApplySrc};
  s[redis_scripts::kRead] = {"read", redis_scripts::kReadSrc};
  s[redis_scripts::kScan] = {"scan", redis_scripts::kScanSrc};
  s[redis_scripts::kChanged] = {"changed", redis_scripts::kChangedSrc};
  s[redis_scripts::kFence] = {"fence", redis_scripts::kFenceSrc};
  s[redis_scripts::kDeleteChunk] = {"delete_chunk", redis_scripts::kDeleteChunkSrc};
  s[redis_scripts::kPurge] = {"purge", redis_scripts::kPurgeSrc};
  return s;
}

// A node's incarnation when it has none yet (SET NX keeps an existing one).
std::string FreshIncarnation() {
  std::random_device rd;
  return absl::StrFormat("%08x%08x", rd(), rd());
}

// Creates the node's incarnation if it has none, then reads it (2 commands, to
// pipeline in front of others).
std::vector<RedisCommand> IncarnationCommands() {
  return {{"SET", RedisStore::kIncarnationKey, FreshIncarnation(), "NX"},
          {"GET", RedisStore::kIncarnationKey}};
}

std::string EpochArg(uint64_t epoch) {
  return epoch == kAnyEpoch ? std::string("any") : absl::StrCat(epoch);
}

std::string Str(const redisReply* r) {
  if (r == nullptr) return "";
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_ERROR) {
    return std::string(r->str, r->len);
  }
  if (r->type == REDIS_REPLY_INTEGER) return absl::StrCat(r->integer);
  return "";
}

uint64_t U64(const redisReply* r) {
  if (r == nullptr) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return static_cast<uint64_t>(r->integer);
  uint64_t v = 0;
  if (!absl::SimpleAtoi(Str(r), &v)) return 0;
  return v;
}

int64_t I64(const redisReply* r) {
  if (r == nullptr) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  int64_t v = 0;
  if (!absl::SimpleAtoi(Str(r), &v)) return 0;
  return v;
}

absl::Status ErrorReply(const std::string& address, const redisReply* r) {
  return RedisErrorStatus(address, Str(r));
}

absl::Status FencedError(uint64_t epoch, uint64_t fence) {
  return absl::FailedPreconditionError(
      absl::StrCat("fenced: epoch ", epoch, " is below the shard's fence ", fence));
}

}  // namespace

absl::StatusOr<std::unique_ptr<StoreAdapter>> MakeStoreAdapter(const std::string& store,
                                                               const std::string& address,
                                                               const StoreOptions& options) {
  if (store != "redis" && !store.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("store: unknown store type '", store, "'"));
  }
  auto r = RedisStore::Create(address, options);
  if (!r.ok()) return r.status();
  return std::unique_ptr<StoreAdapter>(std::move(*r));
}

absl::StatusOr<std::unique_ptr<RedisStore>> RedisStore::Create(const std::string& address,
                                                               const StoreOptions& options) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("address: '", address, "' is not HOST:PORT"));
  }
  const std::string host = HostOf(address);
  if (!options.insecure && !IsLoopbackHost(host)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store.insecure: node address ", address,
        " is not loopback and the redis client has no TLS; reach the node through a local TLS "
        "tunnel (docs/security.md) or set store.insecure: true"));
  }
  auto pool = std::make_unique<RedisConnectionPool>(
      host, port, options.connect_timeout_ms, options.op_timeout_ms, options.pool_size,
      AllScripts(), RedisAuth{options.username, options.password});
  return std::unique_ptr<RedisStore>(new RedisStore(std::move(pool), address));
}

std::string RedisStore::ShardPrefix(const ShardKey& shard) {
  return absl::StrCat("mi:", shard.index, ":", shard.generation, ":", shard.shard, ":");
}

absl::StatusOr<std::string> RedisStore::Incarnation() {
  auto r = pool_->Pipeline(IncarnationCommands());
  if (!r.ok()) return r.status();
  const redisReply* got = (*r)[1].get();
  if (got->type != REDIS_REPLY_STRING) return ErrorReply(address_, got);
  return Str(got);
}

absl::StatusOr<std::vector<ApplyResult>> RedisStore::Apply(const ShardKey& shard, uint64_t epoch,
                                                           const std::vector<Mutation>& muts) {
  auto r = ApplyMany(epoch, {ShardMutations{shard, muts}});
  if (!r.ok()) return r.status();
  return std::move((*r)[0]);
}

absl::StatusOr<std::vector<std::vector<ApplyResult>>> RedisStore::ApplyMany(
    uint64_t epoch, const std::vector<ShardMutations>& batches) {
  if (epoch == kAnyEpoch) {
    return absl::InvalidArgumentError("epoch: kAnyEpoch is for reads only");
  }
  const std::string ep = EpochArg(epoch);
  const std::string now = absl::StrCat(SystemClock::Default()->NowMs());
  std::vector<RedisCommand> calls;
  // (batch, first mutation, count) of each call.
  struct Span {
    size_t batch, first, count;
  };
  std::vector<Span> spans;
  for (size_t b = 0; b < batches.size(); ++b) {
    const auto& muts = batches[b].muts;
    const std::string prefix = ShardPrefix(batches[b].shard);
    for (size_t first = 0; first < muts.size(); first += kMutationsPerScript) {
      const size_t count = std::min(kMutationsPerScript, muts.size() - first);
      RedisCommand call;
      call.reserve(3 + 5 * count);
      call.push_back(prefix);
      call.push_back(ep);
      call.push_back(now);
      for (size_t i = first; i < first + count; ++i) {
        const Mutation& m = muts[i];
        call.push_back(m.pk);
        call.push_back(m.version.ToKey());
        call.push_back(absl::StrCat(m.tombstone ? "1" : "0", m.overwrite_same_version ? "r" : ""));
        call.push_back(m.tombstone ? std::string() : m.body);
        call.push_back(absl::StrCat(m.tombstone ? 0 : m.expires_at_ms));
      }
      calls.push_back(std::move(call));
      spans.push_back({b, first, count});
    }
  }
  std::vector<std::vector<ApplyResult>> out(batches.size());
  for (size_t b = 0; b < batches.size(); ++b) out[b].resize(batches[b].muts.size());
  if (calls.empty()) return out;
  auto replies = pool_->EvalMany(redis_scripts::kApply, calls);
  if (!replies.ok()) return replies.status();
  for (size_t c = 0; c < calls.size(); ++c) {
    const redisReply* r = (*replies)[c].get();
    const Span& sp = spans[c];
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 * sp.count) {
      return ErrorReply(address_, r);
    }
    for (size_t i = 0; i < sp.count; ++i) {
      ApplyResult& res = out[sp.batch][sp.first + i];
      const int64_t code = I64(r->element[2 * i]);
      const redisReply* val = r->element[2 * i + 1];
      if (code == 1) {
        res.outcome = ApplyOutcome::kApplied;
        res.change_seq = U64(val);
      } else if (code == 2) {
        res.outcome = ApplyOutcome::kStoredIsNewer;
        if (!Version::FromKey(Str(val), &res.stored)) return ErrorReply(address_, val);
      } else {
        res.outcome = ApplyOutcome::kFenced;
        res.fence = U64(val);
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<StoredDoc>> RedisStore::ReadDocs(int script,
                                                            std::vector<std::string> args) {
  auto replies = pool_->EvalMany(static_cast<size_t>(script), {std::move(args)});
  if (!replies.ok()) return replies.status();
  return ParseDocs((*replies)[0].get());
}

absl::StatusOr<std::vector<StoredDoc>> RedisStore::ParseDocs(const redisReply* r) const {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) return ErrorReply(address_, r);
  if (Str(r->element[0]) == "F") {
    return absl::FailedPreconditionError(
        absl::StrCat("fenced: the shard's fence is ", U64(r->element[1])));
  }
  if ((r->elements - 1) % 7 != 0) return ErrorReply(address_, r);
  std::vector<StoredDoc> docs;
  docs.reserve((r->elements - 1) / 7);
  for (size_t i = 1; i + 6 < r->elements; i += 7) {
    StoredDoc d;
    d.pk = Str(r->element[i]);
    if (!Version::FromKey(Str(r->element[i + 1]), &d.version)) {
      return ErrorReply(address_, r->element[i + 1]);
    }
    d.tombstone = Str(r->element[i + 2]) == "1";
    d.body = Str(r->element[i + 3]);
    d.expires_at_ms = I64(r->element[i + 4]);
    d.change_seq = U64(r->element[i + 5]);
    d.applied_at_ms = I64(r->element[i + 6]);
    docs.push_back(std::move(d));
  }
  return docs;
}

absl::StatusOr<StoredDoc> RedisStore::Get(const ShardKey& shard, uint64_t epoch,
                                          const std::string& pk) {
  auto docs = ReadDocs(redis_scripts::kRead, {ShardPrefix(shard), EpochArg(epoch), pk});
  if (!docs.ok()) return docs.status();
  if (docs->empty()) return absl::NotFoundError(absl::StrCat("pk '", pk, "' not found"));
  return std::move((*docs)[0]);
}

absl::StatusOr<std::vector<StoredDoc>> RedisStore::Scan(const ShardKey& shard, uint64_t epoch,
                                                        const std::string& after_pk,
                                                        uint32_t limit) {
  return ReadDocs(redis_scripts::kScan, {ShardPrefix(shard), EpochArg(epoch), after_pk,
                                         absl::StrCat(limit == 0 ? 1000 : limit)});
}

absl::StatusOr<std::vector<StoredDoc>> RedisStore::ChangedSince(const ShardKey& shard,
                                                                uint64_t epoch, uint64_t after_seq,
                                                                uint64_t upto_seq, uint32_t limit) {
  auto pages = ChangedSinceMany(epoch, {ChangedRange{shard, after_seq, upto_seq}}, limit);
  if (!pages.ok()) return pages.status();
  return std::move((*pages)[0]);
}

absl::StatusOr<std::vector<std::vector<StoredDoc>>> RedisStore::ChangedSinceMany(
    uint64_t epoch, const std::vector<ChangedRange>& ranges, uint32_t limit) {
  std::vector<RedisCommand> calls;
  calls.reserve(ranges.size());
  for (const auto& r : ranges) {
    calls.push_back({ShardPrefix(r.shard), EpochArg(epoch), absl::StrCat(r.after_seq),
                     absl::StrCat(r.upto_seq), absl::StrCat(limit == 0 ? 1000 : limit)});
  }
  std::vector<std::vector<StoredDoc>> out;
  if (calls.empty()) return out;
  auto replies = pool_->EvalMany(redis_scripts::kChanged, calls);
  if (!replies.ok()) return replies.status();
  out.reserve(replies->size());
  for (const auto& reply : *replies) {
    auto docs = ParseDocs(reply.get());
    if (!docs.ok()) return docs.status();
    out.push_back(*std::move(docs));
  }
  return out;
}

absl::StatusOr<SeqPosition> RedisStore::CurrentSeq(const ShardKey& shard) {
  // One round trip: the incarnation (created if the node has none) and the seq.
  std::vector<RedisCommand> cmds = IncarnationCommands();
  cmds.push_back({"GET", ShardPrefix(shard) + "q"});
  auto r = pool_->Pipeline(cmds);
  if (!r.ok()) return r.status();
  const redisReply* inc = (*r)[1].get();
  if (inc->type != REDIS_REPLY_STRING) return ErrorReply(address_, inc);
  return SeqPosition{Str(inc), U64((*r)[2].get())};
}

absl::StatusOr<SeqPosition> RedisStore::SetFence(const ShardKey& shard, uint64_t epoch) {
  auto f = SetFenceMany({shard}, epoch);
  if (!f.ok()) return f.status();
  return (*f)[0];
}

absl::StatusOr<std::vector<SeqPosition>> RedisStore::SetFenceMany(
    const std::vector<ShardKey>& shards, uint64_t epoch) {
  if (epoch == kAnyEpoch || epoch >= (uint64_t{1} << 53)) {
    return absl::InvalidArgumentError("epoch: a fence must be below 2^53");
  }
  std::vector<RedisCommand> calls;
  calls.reserve(shards.size());
  const std::string fresh = FreshIncarnation();  // SET NX: one candidate serves every call
  const std::string ep = EpochArg(epoch);
  for (const auto& s : shards) calls.push_back({ShardPrefix(s), ep, kIncarnationKey, fresh});
  std::vector<SeqPosition> out;
  if (calls.empty()) return out;
  auto replies = pool_->EvalMany(redis_scripts::kFence, calls);
  if (!replies.ok()) return replies.status();
  out.reserve(replies->size());
  for (const auto& reply : *replies) {
    const redisReply* r = reply.get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[2]->type != REDIS_REPLY_STRING) {
      return ErrorReply(address_, r);
    }
    out.push_back(SeqPosition{Str(r->element[2]), U64(r->element[0])});
  }
  return out;
}

absl::StatusOr<uint64_t> RedisStore::GetFence(const ShardKey& shard) {
  auto r = pool_->Pipeline({{"GET", ShardPrefix(shard) + "f"}});
  if (!r.ok()) return r.status();
  return U64((*r)[0].get());
}

absl::Status RedisStore::DeleteShard(const ShardKey& shard, uint64_t epoch,
                                     const std::function<bool()>& cancelled) {
  if (epoch == kAnyEpoch) return absl::InvalidArgumentError("epoch: kAnyEpoch is for reads only");
  // Bounded: each chunk deletes up to kDeleteChunk entries; concurrent writers at
  // an epoch above the fence could keep adding, so stop after many rounds. Each
  // chunk's script checks the fence itself: a holder whose lease moved on is
  // stopped by the next chunk once the new holder raised the fence.
  for (int round = 0; round < 1'000'000; ++round) {
    if (cancelled && cancelled()) return absl::CancelledError("delete shard: cancelled");
    auto replies =
        pool_->EvalMany(redis_scripts::kDeleteChunk,
                        {{ShardPrefix(shard), EpochArg(epoch), absl::StrCat(kDeleteChunk)}});
    if (!replies.ok()) return replies.status();
    const redisReply* r = (*replies)[0].get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) return ErrorReply(address_, r);
    if (Str(r->element[0]) == "F") return FencedError(epoch, U64(r->element[1]));
    if (U64(r->element[1]) == 0) return absl::OkStatus();
  }
  return absl::InternalError("delete shard: did not finish");
}

absl::StatusOr<ShardStatsResult> RedisStore::Stats(const ShardKey& shard) {
  auto r = pool_->Pipeline({{"HMGET", ShardPrefix(shard) + "s", "d", "b", "t"}});
  if (!r.ok()) return r.status();
  const redisReply* a = (*r)[0].get();
  if (a->type != REDIS_REPLY_ARRAY || a->elements != 3) return ErrorReply(address_, a);
  ShardStatsResult s;
  s.documents = U64(a->element[0]);
  s.bytes = U64(a->element[1]);
  s.tombstones = U64(a->element[2]);
  return s;
}

absl::StatusOr<NodeCapacity> RedisStore::Capacity() {
  auto r = pool_->Pipeline({{"INFO", "memory"}});
  if (!r.ok()) return r.status();
  const redisReply* info = (*r)[0].get();
  if (info->type != REDIS_REPLY_STRING) {
    return ErrorReply(address_, info);
  }
  NodeCapacity out;
  for (absl::string_view line : absl::StrSplit(Str(info), absl::ByAnyChar("\r\n"))) {
    uint64_t v = 0;
    if (absl::ConsumePrefix(&line, "maxmemory:") && absl::SimpleAtoi(line, &v)) {
      out.capacity_bytes = v;
    } else if (absl::ConsumePrefix(&line, "used_memory:") && absl::SimpleAtoi(line, &v)) {
      out.used_bytes = v;
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> RedisStore::DurabilityConfig() {
  static const char* const kKeys[] = {"appendonly", "appendfsync", "maxmemory-policy"};
  std::vector<RedisCommand> cmds;
  for (const char* k : kKeys) cmds.push_back({"CONFIG", "GET", k});
  auto r = pool_->Pipeline(cmds);
  if (!r.ok()) return r.status();
  std::map<std::string, std::string> out;
  for (const auto& reply : *r) {
    const redisReply* x = reply.get();
    if (x->type != REDIS_REPLY_ARRAY) return ErrorReply(address_, x);
    for (size_t i = 0; i + 1 < x->elements; i += 2)
      out[Str(x->element[i])] = Str(x->element[i + 1]);
  }
  return out;
}

absl::StatusOr<uint64_t> RedisStore::PurgeTombstones(const ShardKey& shard, uint64_t epoch,
                                                     int64_t applied_before_ms,
                                                     const std::function<bool()>& cancelled) {
  if (epoch == kAnyEpoch) return absl::InvalidArgumentError("epoch: kAnyEpoch is for reads only");
  uint64_t purged = 0;
  std::string cursor;
  while (true) {
    if (cancelled && cancelled()) return absl::CancelledError("purge tombstones: cancelled");
    auto replies = pool_->EvalMany(
        redis_scripts::kPurge,
        {{ShardPrefix(shard), EpochArg(epoch), cursor, "1000", absl::StrCat(applied_before_ms)}});
    if (!replies.ok()) return replies.status();
    const redisReply* r = (*replies)[0].get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) return ErrorReply(address_, r);
    if (Str(r->element[0]) == "F") return FencedError(epoch, U64(r->element[1]));
    purged += U64(r->element[1]);
    cursor = Str(r->element[2]);
    if (cursor.empty()) return purged;
  }
}

}  // namespace miroir
