// Loopback ports for multi-process tests. Programs that accept `--port-file`
// bind port 0 themselves and the harness reads the port they bound (no race);
// for programs that cannot (redis-server), PickFreePort asks the OS for a free
// port and the caller retries on a bind failure. Thread-safe (stateless).
#ifndef MIROIR_TESTS_HARNESS_PORTS_H_
#define MIROIR_TESTS_HARNESS_PORTS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace miroir::testing {

class Process;

// Binds 127.0.0.1:0, reads the port, closes. INTERNAL on a socket error.
absl::StatusOr<int> PickFreePort();

// Waits until `path` holds a port number ("PORT\n") and returns it. Fails early
// with FAILED_PRECONDITION (quoting the log tail) when `process` exits first;
// DEADLINE_EXCEEDED after `timeout`.
absl::StatusOr<int> WaitForPortFile(const std::string& path, absl::Duration timeout,
                                    Process* process = nullptr);

// Waits until a TCP connect to 127.0.0.1:port succeeds.
absl::Status WaitForTcp(int port, absl::Duration timeout, Process* process = nullptr);

// "127.0.0.1:PORT".
std::string LoopbackAddress(int port);

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_PORTS_H_
