// RedisConnectionPool: a bounded pool of blocking hiredis connections to one
// redis-server, with connect/op timeouts, reconnect on error and the Lua scripts
// loaded on every new connection (EVALSHA with a NOSCRIPT fallback).
//
// Thread-safe: any thread may Acquire; a connection is used by one thread at a
// time and returned (or dropped when broken) by its Lease's destructor.
#ifndef MIROIR_WORKER_STORES_REDIS_CONNECTION_H_
#define MIROIR_WORKER_STORES_REDIS_CONNECTION_H_

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace miroir {

// Owns one reply; frees it on destruction.
struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// A Lua script with its SHA1 (computed by the server on SCRIPT LOAD).
struct LuaScript {
  const char* name;
  const char* source;
};

// One pipelined command: argv as binary-safe strings.
using RedisCommand = std::vector<std::string>;

class RedisConnectionPool {
 public:
  RedisConnectionPool(std::string host, int port, int connect_timeout_ms, int op_timeout_ms,
                      int pool_size, std::vector<LuaScript> scripts);
  ~RedisConnectionPool();
  RedisConnectionPool(const RedisConnectionPool&) = delete;
  RedisConnectionPool& operator=(const RedisConnectionPool&) = delete;

  // Sends `cmds` pipelined on one connection and returns one reply per command
  // (a reply may be an error reply). UNAVAILABLE when the node cannot be reached
  // or the connection broke (the connection is dropped; the next call reconnects).
  absl::StatusOr<std::vector<ReplyPtr>> Pipeline(const std::vector<RedisCommand>& cmds);

  // EVALSHA of script `index` (in the constructor's order) for each argv tail in
  // `calls` (numkeys 0), pipelined; reloads the script and retries once on NOSCRIPT.
  absl::StatusOr<std::vector<ReplyPtr>> EvalMany(size_t index,
                                                 const std::vector<RedisCommand>& calls);

 private:
  absl::StatusOr<redisContext*> Acquire();
  void Release(redisContext* c, bool broken);
  absl::Status LoadScripts(redisContext* c);

  const std::string host_;
  const int port_;
  const int connect_timeout_ms_;
  const int op_timeout_ms_;
  const int pool_size_;
  const std::vector<LuaScript> scripts_;

  absl::Mutex mu_;
  std::vector<redisContext*> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> shas_ ABSL_GUARDED_BY(mu_);
};

}  // namespace miroir

#endif  // MIROIR_WORKER_STORES_REDIS_CONNECTION_H_
