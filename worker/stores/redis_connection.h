// RedisConnectionPool: a bounded pool of blocking hiredis connections to one
// redis-server, with connect/op timeouts, reconnect on error and the Lua scripts
// loaded on every new connection (EVALSHA with a NOSCRIPT fallback); every new
// connection authenticates first when credentials are set (ACL user).
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

// The ACL user a connection authenticates as (empty password: no AUTH).
struct RedisAuth {
  std::string username;  // "" = the default user (AUTH password)
  std::string password;
};

// The status for an error reply `text` from the node at `address`: UNAVAILABLE
// for what passes or what the node's operator must fix while others still serve
// (-LOADING while it replays its AOF, -BUSY, -MASTERDOWN, -TRYAGAIN; -NOAUTH,
// -WRONGPASS, -NOPERM: the credentials, with a hint at store.username and
// store.password_file), INTERNAL otherwise.
absl::Status RedisErrorStatus(const std::string& address, const std::string& text);

// One pipelined command: argv as binary-safe strings.
using RedisCommand = std::vector<std::string>;

class RedisConnectionPool {
 public:
  RedisConnectionPool(std::string host, int port, int connect_timeout_ms, int op_timeout_ms,
                      int pool_size, std::vector<LuaScript> scripts, RedisAuth auth = {});
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
  // AUTH on a new connection; UNAVAILABLE naming the user (never the password).
  absl::Status Authenticate(redisContext* c);

  const std::string host_;
  const int port_;
  const int connect_timeout_ms_;
  const int op_timeout_ms_;
  const int pool_size_;
  const std::vector<LuaScript> scripts_;
  const RedisAuth auth_;

  absl::Mutex mu_;
  std::vector<redisContext*> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> shas_ ABSL_GUARDED_BY(mu_);
};

}  // namespace miroir

#endif  // MIROIR_WORKER_STORES_REDIS_CONNECTION_H_
