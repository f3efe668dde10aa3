// RedisNode: one real `redis-server` store node for a test, on a free loopback
// port with its own data directory, configured as miroir requires (AOF with
// appendfsync always, maxmemory-policy noeviction, no RDB snapshots).
//
//   Kill()        SIGKILL (data written with AOF fsync survives),
//   Restart()     same dir and port: the node comes back with its data,
//   WipeRestart() data dir emptied: a new incarnation (data and fences gone).
//
// Thread-compatible: one owner (the test or the Fleet) calls it.
#ifndef MIROIR_TESTS_HARNESS_REDIS_NODE_H_
#define MIROIR_TESTS_HARNESS_REDIS_NODE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "harness/process.h"
#include "worker/stores/store_adapter.h"

namespace miroir::testing {

// A store node that runs with ACLs (DESIGN §13): the `default` user is off and
// `user` (every key, every command) logs in with `password`. The node reads them
// from DIR/users.acl, where the password is only a SHA-256.
struct RedisAcl {
  std::string user;
  std::string password;
};

// The harness's own direct commands (RedisCommand: the check, fleet setup)
// authenticate to `address` as `acl` from now on; a TcpProxy's address in front
// of an ACL node is registered the same way; "*" applies to every address not
// registered itself (the demo writer: every node of a fleet). Thread-safe.
void RegisterRedisAcl(const std::string& address, const RedisAcl& acl);
// The adapter options for reading `address` the harness's way (the check, the
// reshard counts): pool of one, and the registered ACL user if any.
StoreOptions HarnessStoreOptions(const std::string& address);

class RedisNode {
 public:
  // Starts redis-server with its data in `dir` (created) on a free port (or
  // `port` when non-zero), and waits until it answers PING. Retries with another
  // port when a picked port was taken meanwhile.
  static absl::StatusOr<std::unique_ptr<RedisNode>> Start(const std::string& dir, int port = 0,
                                                          std::optional<RedisAcl> acl = {});

  ~RedisNode() = default;  // the Process destructor kills and reaps

  int port() const { return port_; }
  std::string address() const;  // "127.0.0.1:PORT"
  const std::string& dir() const { return dir_; }
  Process* process() { return process_.get(); }
  bool Running() { return process_ != nullptr && process_->Running(); }

  absl::Status Kill();
  absl::Status Stop() { return process_->Stop(); }
  absl::Status Cont() { return process_->Cont(); }
  // Starts again on the same port with the same dir (after Kill, or kills first).
  absl::Status Restart();
  // Kills, deletes the data dir's contents, starts on the same port.
  absl::Status WipeRestart();

  // Runs one command on the node (hiredis) and returns the reply as text: a
  // status/string reply as is, an integer in decimal, nil as "(nil)", an array
  // as its elements joined by '\n'. An error reply is returned as an error.
  absl::StatusOr<std::string> Command(const std::vector<std::string>& argv);

 private:
  RedisNode(std::string dir, int port, std::optional<RedisAcl> acl)
      : dir_(std::move(dir)), port_(port), acl_(std::move(acl)) {}
  absl::Status Launch();

  std::string dir_;
  int port_;
  std::optional<RedisAcl> acl_;
  int launches_ = 0;
  std::unique_ptr<Process> process_;
};

// One command against any redis at `address` (HOST:PORT), same reply rules as
// RedisNode::Command, authenticated first when the address was registered with
// RegisterRedisAcl. UNAVAILABLE when it cannot connect.
absl::StatusOr<std::string> RedisCommand(const std::string& address,
                                         const std::vector<std::string>& argv,
                                         int timeout_ms = 2000);

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_REDIS_NODE_H_
