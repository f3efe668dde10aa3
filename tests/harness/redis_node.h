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
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "harness/process.h"

namespace miroir::testing {

class RedisNode {
 public:
  // Starts redis-server with its data in `dir` (created) on a free port (or
  // `port` when non-zero), and waits until it answers PING. Retries with another
  // port when a picked port was taken meanwhile.
  static absl::StatusOr<std::unique_ptr<RedisNode>> Start(const std::string& dir, int port = 0);

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
  RedisNode(std::string dir, int port) : dir_(std::move(dir)), port_(port) {}
  absl::Status Launch();

  std::string dir_;
  int port_;
  int launches_ = 0;
  std::unique_ptr<Process> process_;
};

// One command against any redis at `address` (HOST:PORT), same reply rules as
// RedisNode::Command. UNAVAILABLE when it cannot connect.
absl::StatusOr<std::string> RedisCommand(const std::string& address,
                                         const std::vector<std::string>& argv,
                                         int timeout_ms = 2000);

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_REDIS_NODE_H_
