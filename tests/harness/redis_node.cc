#include "harness/redis_node.h"

#include <hiredis/hiredis.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/auth.h"
#include "harness/ports.h"
#include "harness/temp_dir.h"

namespace miroir::testing {
namespace {

constexpr char kRedisBinary[] = "redis-server";

absl::Mutex g_acl_mu;
std::map<std::string, RedisAcl>& AclByAddress() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_acl_mu) {
  static auto* m = new std::map<std::string, RedisAcl>();
  return *m;
}

std::optional<RedisAcl> AclFor(const std::string& address) {
  absl::MutexLock l(&g_acl_mu);
  auto it = AclByAddress().find(address);
  if (it == AclByAddress().end()) it = AclByAddress().find("*");
  if (it == AclByAddress().end()) return std::nullopt;
  return it->second;
}

std::string ReplyText(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return absl::StrCat(r->integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::vector<std::string> parts;
      for (size_t i = 0; i < r->elements; ++i) parts.push_back(ReplyText(r->element[i]));
      return absl::StrJoin(parts, "\n");
    }
    default:
      return "";
  }
}

}  // namespace

void RegisterRedisAcl(const std::string& address, const RedisAcl& acl) {
  absl::MutexLock l(&g_acl_mu);
  AclByAddress()[address] = acl;
}

StoreOptions HarnessStoreOptions(const std::string& address) {
  StoreOptions o;
  o.pool_size = 1;
  if (auto acl = AclFor(address)) {
    o.username = acl->user;
    o.password = acl->password;
  }
  return o;
}

absl::StatusOr<std::string> RedisCommand(const std::string& address,
                                         const std::vector<std::string>& argv, int timeout_ms) {
  std::pair<std::string, std::string> hp = absl::StrSplit(address, absl::MaxSplits(':', 1));
  int port = 0;
  if (!absl::SimpleAtoi(hp.second, &port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad address ", address));
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout(hp.first.c_str(), port, tv);
  if (c == nullptr || c->err) {
    std::string err = c ? c->errstr : "alloc";
    if (c) redisFree(c);
    return absl::UnavailableError(absl::StrCat("connect ", address, ": ", err));
  }
  redisSetTimeout(c, tv);
  if (auto acl = AclFor(address)) {
    auto* auth = static_cast<redisReply*>(
        acl->user.empty() ? redisCommand(c, "AUTH %b", acl->password.data(), acl->password.size())
                          : redisCommand(c, "AUTH %b %b", acl->user.data(), acl->user.size(),
                                         acl->password.data(), acl->password.size()));
    const bool ok = auth != nullptr && auth->type != REDIS_REPLY_ERROR;
    std::string err = auth == nullptr ? c->errstr : ok ? "" : std::string(auth->str, auth->len);
    if (auth) freeReplyObject(auth);
    if (!ok) {
      redisFree(c);
      return absl::UnavailableError(
          absl::StrCat("AUTH on ", address, " as ", acl->user, ": ", err));
    }
  }
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
  if (reply == nullptr) {
    std::string err = c->errstr;
    redisFree(c);
    return absl::UnavailableError(absl::StrCat("command on ", address, ": ", err));
  }
  absl::StatusOr<std::string> out;
  if (reply->type == REDIS_REPLY_ERROR) {
    out = absl::FailedPreconditionError(std::string(reply->str, reply->len));
  } else {
    out = ReplyText(reply);
  }
  freeReplyObject(reply);
  redisFree(c);
  return out;
}

absl::StatusOr<std::unique_ptr<RedisNode>> RedisNode::Start(const std::string& dir, int port,
                                                            std::optional<RedisAcl> acl) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const bool pick = port == 0;
  absl::Status last;
  for (int attempt = 0; attempt < (pick ? 5 : 1); ++attempt) {
    int p = port;
    if (pick) {
      auto free_port = PickFreePort();
      if (!free_port.ok()) return free_port.status();
      p = *free_port;
    }
    std::unique_ptr<RedisNode> node(new RedisNode(dir, p, acl));
    last = node->Launch();
    if (last.ok()) return node;
  }
  return last;
}

std::string RedisNode::address() const { return LoopbackAddress(port_); }

absl::Status RedisNode::Launch() {
  ++launches_;
  ProcessOptions opts;
  opts.binary = kRedisBinary;
  opts.log_path = absl::StrCat(dir_, "/redis.log");
  opts.args = {"--port",
               absl::StrCat(port_),
               "--bind",
               "127.0.0.1",
               "--dir",
               dir_,
               "--appendonly",
               "yes",
               "--appendfsync",
               "always",
               "--maxmemory-policy",
               "noeviction",
               "--save",
               "",
               "--daemonize",
               "no",
               "--protected-mode",
               "no",
               "--logfile",
               ""};
  if (acl_) {
    const std::string users = absl::StrCat(dir_, "/users.acl");
    std::ofstream f(users, std::ios::trunc);
    f << "user default off\n"
      << "user " << acl_->user << " on #" << Sha256Hex(acl_->password) << " ~* &* +@all\n";
    if (!f.good()) return absl::InternalError(absl::StrCat("cannot write ", users));
    f.close();
    opts.args.push_back("--aclfile");
    opts.args.push_back(users);
    RegisterRedisAcl(address(), *acl_);
  }
  auto p = Process::Start(opts);
  if (!p.ok()) return p.status();
  process_ = std::move(*p);
  // Bounded wait for PONG (while loading the AOF redis answers -LOADING).
  absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (true) {
    auto pong = RedisCommand(address(), {"PING"}, 500);
    if (pong.ok() && *pong == "PONG") return absl::OkStatus();
    if (!process_->Running()) {
      return absl::UnavailableError(absl::StrCat("redis-server on port ", port_, " exited with ",
                                                 process_->exit_code().value_or(-1), ":\n",
                                                 process_->LogTail(10)));
    }
    if (absl::Now() >= deadline) {
      (void)process_->Kill();
      return absl::DeadlineExceededError(
          absl::StrCat("redis-server on port ", port_, " did not answer PING"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

absl::Status RedisNode::Kill() {
  if (process_ == nullptr) return absl::OkStatus();
  return process_->Kill();
}

absl::Status RedisNode::Restart() {
  if (absl::Status s = Kill(); !s.ok()) return s;
  // The port may linger briefly in the kernel; redis binds with SO_REUSEADDR, so
  // a few bounded retries are enough.
  absl::Status last;
  for (int attempt = 0; attempt < 10; ++attempt) {
    last = Launch();
    if (last.ok()) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last;
}

absl::Status RedisNode::WipeRestart() {
  if (absl::Status s = Kill(); !s.ok()) return s;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (entry.path().filename() == "redis.log") continue;  // keep the history
    std::filesystem::remove_all(entry.path(), ec);
  }
  return Restart();
}

absl::StatusOr<std::string> RedisNode::Command(const std::vector<std::string>& argv) {
  return RedisCommand(address(), argv);
}

}  // namespace miroir::testing
