#include "worker/stores/redis_connection.h"

#include <sys/time.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace miroir {
namespace {

timeval ToTimeval(int ms) {
  timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

void AppendArgv(redisContext* c, const RedisCommand& cmd) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(cmd.size());
  lens.reserve(cmd.size());
  for (const auto& a : cmd) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(c, static_cast<int>(cmd.size()), argv.data(), lens.data());
}

}  // namespace

absl::Status RedisErrorStatus(const std::string& address, const std::string& text) {
  for (const char* transient : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"}) {
    if (absl::StartsWith(text, transient)) {
      return absl::UnavailableError(absl::StrCat("redis ", address, ": ", text));
    }
  }
  for (const char* auth : {"NOAUTH", "WRONGPASS", "NOPERM"}) {
    if (absl::StartsWith(text, auth)) {
      return absl::UnavailableError(
          absl::StrCat("redis ", address, ": ", text,
                       " (the node requires an ACL user: store.username, store.password_file)"));
    }
  }
  return absl::InternalError(absl::StrCat("redis ", address, ": ", text));
}

RedisConnectionPool::RedisConnectionPool(std::string host, int port, int connect_timeout_ms,
                                         int op_timeout_ms, int pool_size,
                                         std::vector<LuaScript> scripts, RedisAuth auth)
    : host_(std::move(host)),
      port_(port),
      connect_timeout_ms_(connect_timeout_ms),
      op_timeout_ms_(op_timeout_ms),
      pool_size_(pool_size < 1 ? 1 : pool_size),
      scripts_(std::move(scripts)),
      auth_(std::move(auth)) {
  shas_.resize(scripts_.size());
}

RedisConnectionPool::~RedisConnectionPool() {
  absl::MutexLock l(&mu_);
  for (redisContext* c : idle_) redisFree(c);
  idle_.clear();
}

absl::Status RedisConnectionPool::LoadScripts(redisContext* c) {
  // Pipelined: one round trip for every script.
  for (const auto& s : scripts_) {
    if (redisAppendCommand(c, "SCRIPT LOAD %s", s.source) != REDIS_OK) {
      return absl::UnavailableError(absl::StrCat("redis ", host_, ":", port_, ": ", c->errstr));
    }
  }
  std::vector<std::string> shas;
  for (const auto& s : scripts_) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK) {
      return absl::UnavailableError(absl::StrCat("redis ", host_, ":", port_, ": ", c->errstr));
    }
    ReplyPtr r(static_cast<redisReply*>(raw));
    if (!r)
      return absl::UnavailableError(absl::StrCat("redis ", host_, ":", port_, ": ", c->errstr));
    if (r->type == REDIS_REPLY_ERROR) {
      return RedisErrorStatus(
          absl::StrCat(host_, ":", port_),
          absl::StrCat(std::string(r->str, r->len), " (SCRIPT LOAD ", s.name, ")"));
    }
    if (r->type != REDIS_REPLY_STRING) {
      return absl::InternalError(
          absl::StrCat("redis SCRIPT LOAD ", s.name, " failed: unexpected reply type"));
    }
    shas.emplace_back(r->str, r->len);
  }
  absl::MutexLock l(&mu_);
  shas_ = std::move(shas);
  return absl::OkStatus();
}

absl::Status RedisConnectionPool::Authenticate(redisContext* c) {
  if (auth_.password.empty()) return absl::OkStatus();
  std::vector<const char*> argv = {"AUTH"};
  std::vector<size_t> lens = {4};
  if (!auth_.username.empty()) {
    argv.push_back(auth_.username.data());
    lens.push_back(auth_.username.size());
  }
  argv.push_back(auth_.password.data());
  lens.push_back(auth_.password.size());
  ReplyPtr reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
  const std::string who = auth_.username.empty() ? "the default user" : "user " + auth_.username;
  if (reply == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("redis ", host_, ":", port_, ": AUTH as ", who, ": ", c->errstr));
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    // The server's reply (WRONGPASS ..., or an AUTH without a configured
    // password) never echoes the password.
    return absl::UnavailableError(absl::StrCat("redis ", host_, ":", port_, ": AUTH as ", who,
                                               " refused: ", std::string(reply->str, reply->len)));
  }
  return absl::OkStatus();
}

absl::StatusOr<redisContext*> RedisConnectionPool::Acquire() {
  {
    absl::MutexLock l(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < pool_size_;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(op_timeout_ms_))) {
      return absl::UnavailableError(
          absl::StrCat("redis ", host_, ":", port_, ": no free connection"));
    }
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return c;
    }
    ++open_;
  }
  redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, ToTimeval(connect_timeout_ms_));
  absl::Status st;
  if (c == nullptr || c->err) {
    st = absl::UnavailableError(absl::StrCat(
        "redis ", host_, ":", port_, ": cannot connect: ", c ? c->errstr : "out of memory"));
  } else {
    redisSetTimeout(c, ToTimeval(op_timeout_ms_));
    redisEnableKeepAlive(c);
    st = Authenticate(c);
    // Scripts live in the server, not the connection: only the first connection
    // loads them (EvalMany reloads them on NOSCRIPT, after a restart or a flush).
    bool loaded;
    {
      absl::MutexLock l(&mu_);
      loaded = !shas_.empty() && !shas_[0].empty();
    }
    if (st.ok() && !loaded) st = LoadScripts(c);
  }
  if (!st.ok()) {
    if (c) redisFree(c);
    absl::MutexLock l(&mu_);
    --open_;
    return st;
  }
  return c;
}

void RedisConnectionPool::Release(redisContext* c, bool broken) {
  if (broken) redisFree(c);
  absl::MutexLock l(&mu_);
  if (broken) {
    --open_;
  } else {
    idle_.push_back(c);
  }
}

absl::StatusOr<std::vector<ReplyPtr>> RedisConnectionPool::Pipeline(
    const std::vector<RedisCommand>& cmds) {
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  redisContext* c = *conn;
  for (const auto& cmd : cmds) AppendArgv(c, cmd);
  std::vector<ReplyPtr> out;
  out.reserve(cmds.size());
  for (size_t i = 0; i < cmds.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(c, &reply) != REDIS_OK || reply == nullptr) {
      std::string err = c->errstr;
      Release(c, /*broken=*/true);
      return absl::UnavailableError(absl::StrCat("redis ", host_, ":", port_, ": ", err));
    }
    out.emplace_back(static_cast<redisReply*>(reply));
  }
  Release(c, /*broken=*/false);
  return out;
}

absl::StatusOr<std::vector<ReplyPtr>> RedisConnectionPool::EvalMany(
    size_t index, const std::vector<RedisCommand>& calls) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string sha;
    {
      absl::MutexLock l(&mu_);
      sha = shas_[index];
    }
    if (sha.empty()) {
      // No connection loaded the scripts yet: a round trip through the pool does.
      auto r = Pipeline({{"PING"}});
      if (!r.ok()) return r.status();
      absl::MutexLock l(&mu_);
      sha = shas_[index];
    }
    std::vector<RedisCommand> cmds;
    cmds.reserve(calls.size());
    for (const auto& call : calls) {
      RedisCommand cmd;
      cmd.reserve(call.size() + 3);
      cmd.push_back("EVALSHA");
      cmd.push_back(sha);
      cmd.push_back("0");
      cmd.insert(cmd.end(), call.begin(), call.end());
      cmds.push_back(std::move(cmd));
    }
    auto replies = Pipeline(cmds);
    if (!replies.ok()) return replies.status();
    bool noscript = false;
    for (const auto& r : *replies) {
      if (r->type == REDIS_REPLY_ERROR &&
          absl::StartsWith(absl::string_view(r->str, r->len), "NOSCRIPT")) {
        noscript = true;
      }
    }
    if (!noscript) return replies;
    // The server lost its scripts (SCRIPT FLUSH): reload on a fresh connection. The
    // scripts are idempotent, so re-sending the whole pipeline is safe.
    auto conn = Acquire();
    if (!conn.ok()) return conn.status();
    absl::Status st = LoadScripts(*conn);
    Release(*conn, !st.ok());
    if (!st.ok()) return st;
  }
  return absl::InternalError("redis: scripts keep disappearing (NOSCRIPT)");
}

}  // namespace miroir
