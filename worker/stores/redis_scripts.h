// Lua scripts of the Redis store adapter (key layout in docs/stores.md).
//
// Every script takes numkeys 0 and ARGV[1] = the shard prefix
// "mi:{index}:{generation}:{shard}:", ARGV[2] = the caller's epoch in decimal, or
// "any" for read-only checks that pass every fence. Versions are compared as the
// fixed-width text of Version::ToKey() (Lua numbers are doubles; a u64 does not fit).
#ifndef MIROIR_WORKER_STORES_REDIS_SCRIPTS_H_
#define MIROIR_WORKER_STORES_REDIS_SCRIPTS_H_

namespace miroir::redis_scripts {

// Indexes into kAll.
enum ScriptId { kApply = 0, kRead, kScan, kChanged, kFence, kDeleteChunk, kPurge, kCount };

// ARGV: prefix, epoch, now_ms, then per mutation: pk, vkey, tomb(0|1), body, expires_at_ms.
// tomb may carry a trailing 'r' (anti-entropy repair): an equal stored version is
// overwritten too instead of counting as a retry.
// Returns a flat array, two entries per mutation: 1, seq (applied; same version = a
// retry, answers the stored seq) | 2, stored vkey (stored is newer) | 3, fence (fenced).
inline constexpr const char* kApplySrc = R"lua(
local p = ARGV[1]
local ep = ARGV[2]
local now = ARGV[3]
local fence = tonumber(redis.call('GET', p .. 'f') or '0')
local n = (#ARGV - 3) / 5
local out = {}
if ep ~= 'any' and tonumber(ep) < fence then
  for i = 1, n do out[#out + 1] = 3; out[#out + 1] = fence end
  return out
end
local sk = p .. 's'
for i = 0, n - 1 do
  local b = 3 + i * 5
  local pk, v, tomb, body, exp = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local force = string.sub(tomb, 2, 2) == 'r'
  tomb = string.sub(tomb, 1, 1)
  local dk = p .. 'd:' .. pk
  local cur = redis.call('HMGET', dk, 'v', 't', 'n', 's')
  local cv = cur[1]
  if cv and cv > v then
    out[#out + 1] = 2; out[#out + 1] = cv
  elseif cv and cv == v and not force then
    out[#out + 1] = 1; out[#out + 1] = tonumber(cur[4])
  else
    local seq = redis.call('INCR', p .. 'q')
    if cv then
      if cur[2] == '1' then
        redis.call('HINCRBY', sk, 't', -1)
      else
        redis.call('HINCRBY', sk, 'd', -1)
        redis.call('HINCRBY', sk, 'b', -tonumber(cur[3]))
      end
    end
    if tomb == '1' then
      redis.call('HINCRBY', sk, 't', 1)
      redis.call('HSET', dk, 'v', v, 't', '1', 'b', '', 'n', 0, 'x', '0', 's', seq, 'a', now)
    else
      redis.call('HINCRBY', sk, 'd', 1)
      redis.call('HINCRBY', sk, 'b', #body)
      redis.call('HSET', dk, 'v', v, 't', '0', 'b', body, 'n', #body, 'x', exp, 's', seq, 'a', now)
    end
    redis.call('ZADD', p .. 'k', 0, pk)
    redis.call('ZADD', p .. 'c', seq, pk)
    out[#out + 1] = 1; out[#out + 1] = seq
  end
end
return out
)lua";

// Shared tail of the reading scripts: appends pk and the doc fields of `pks`.
#define MIROIR_REDIS_EMIT_DOCS                                                         \
  "local function emit(p, pks, out)\n"                                                 \
  "  for _, pk in ipairs(pks) do\n"                                                    \
  "    local d = redis.call('HMGET', p .. 'd:' .. pk, 'v', 't', 'b', 'x', 's', 'a')\n" \
  "    if d[1] then\n"                                                                 \
  "      out[#out + 1] = pk\n"                                                         \
  "      for j = 1, 6 do out[#out + 1] = d[j] end\n"                                   \
  "    end\n"                                                                          \
  "  end\n"                                                                            \
  "  return out\n"                                                                     \
  "end\n"                                                                              \
  "local function fenced(p, ep)\n"                                                     \
  "  local f = tonumber(redis.call('GET', p .. 'f') or '0')\n"                         \
  "  if ep ~= 'any' and tonumber(ep) < f then return f end\n"                          \
  "  return nil\n"                                                                     \
  "end\n"

// ARGV: prefix, epoch, pk. Returns {'F', fence} | {'OK'} (absent) | {'OK', pk, v, t, b, x, s, a}.
inline constexpr const char* kReadSrc = MIROIR_REDIS_EMIT_DOCS R"lua(
local f = fenced(ARGV[1], ARGV[2])
if f then return {'F', f} end
return emit(ARGV[1], {ARGV[3]}, {'OK'})
)lua";

// ARGV: prefix, epoch, after_pk ('' = start), limit. Keyset page in byte order.
inline constexpr const char* kScanSrc = MIROIR_REDIS_EMIT_DOCS R"lua(
local f = fenced(ARGV[1], ARGV[2])
if f then return {'F', f} end
local from = '-'
if ARGV[3] ~= '' then from = '(' .. ARGV[3] end
local pks = redis.call('ZRANGEBYLEX', ARGV[1] .. 'k', from, '+', 'LIMIT', 0, tonumber(ARGV[4]))
return emit(ARGV[1], pks, {'OK'})
)lua";

// ARGV: prefix, epoch, after_seq, upto_seq (0 = none), limit. Entries whose last
// change seq is in (after, upto], in seq order: one range read of the change zset.
inline constexpr const char* kChangedSrc = MIROIR_REDIS_EMIT_DOCS R"lua(
local f = fenced(ARGV[1], ARGV[2])
if f then return {'F', f} end
local upto = '+inf'
if ARGV[4] ~= '0' then upto = ARGV[4] end
local pks = redis.call('ZRANGEBYSCORE', ARGV[1] .. 'c', '(' .. ARGV[3], upto, 'LIMIT', 0,
                       tonumber(ARGV[5]))
return emit(ARGV[1], pks, {'OK'})
)lua";

// ARGV: prefix, epoch, incarnation key, a fresh incarnation. Raises the fence (never
// lowers it); returns {seq, fence, incarnation} (the fresh one is stored if the node
// had none), so a fence and the incarnation it was set under are one round trip.
inline constexpr const char* kFenceSrc = R"lua(
local p = ARGV[1]
local e = tonumber(ARGV[2])
redis.call('SET', ARGV[3], ARGV[4], 'NX')
local inc = redis.call('GET', ARGV[3])
local f = tonumber(redis.call('GET', p .. 'f') or '0')
if e > f then redis.call('SET', p .. 'f', ARGV[2]); f = e end
return {tonumber(redis.call('GET', p .. 'q') or '0'), f, inc}
)lua";

// ARGV: prefix, epoch, chunk. Deletes up to `chunk` entries; returns {'F', fence} or
// {'OK', deleted}. When nothing is left, drops the shard's sets and stats (the
// fence and the change counter stay).
inline constexpr const char* kDeleteChunkSrc = R"lua(
local p = ARGV[1]
local f = tonumber(redis.call('GET', p .. 'f') or '0')
if tonumber(ARGV[2]) < f then return {'F', f} end
local pks = redis.call('ZRANGE', p .. 'k', 0, tonumber(ARGV[3]) - 1)
for _, pk in ipairs(pks) do
  redis.call('DEL', p .. 'd:' .. pk)
  redis.call('ZREM', p .. 'k', pk)
  redis.call('ZREM', p .. 'c', pk)
end
if #pks == 0 then redis.call('DEL', p .. 'k', p .. 'c', p .. 's') end
return {'OK', #pks}
)lua";

// ARGV: prefix, epoch, after_pk, limit, applied_before_ms. Purges the tombstones of
// one keyset page applied before the bound; returns {'OK', purged, last_pk_or_''}.
inline constexpr const char* kPurgeSrc = R"lua(
local p = ARGV[1]
local f = tonumber(redis.call('GET', p .. 'f') or '0')
if tonumber(ARGV[2]) < f then return {'F', f} end
local from = '-'
if ARGV[3] ~= '' then from = '(' .. ARGV[3] end
local pks = redis.call('ZRANGEBYLEX', p .. 'k', from, '+', 'LIMIT', 0, tonumber(ARGV[4]))
local before = tonumber(ARGV[5])
local purged = 0
for _, pk in ipairs(pks) do
  local dk = p .. 'd:' .. pk
  local d = redis.call('HMGET', dk, 't', 'a')
  if d[1] == '1' and tonumber(d[2]) < before then
    redis.call('DEL', dk)
    redis.call('ZREM', p .. 'k', pk)
    redis.call('ZREM', p .. 'c', pk)
    redis.call('HINCRBY', p .. 's', 't', -1)
    purged = purged + 1
  end
end
local last = ''
if #pks > 0 then last = pks[#pks] end
return {'OK', purged, last}
)lua";

#undef MIROIR_REDIS_EMIT_DOCS

}  // namespace miroir::redis_scripts

#endif  // MIROIR_WORKER_STORES_REDIS_SCRIPTS_H_
