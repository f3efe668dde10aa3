// The pre-flight of plans that add nodes (Coordinator::set_address_probe): does
// a store address answer? A TCP connect, bounded by a timeout; no data is sent.
// It runs from the coordinator's host: a node the coordinator reaches but no
// worker does is still found by the target-health gate in prepare.
// Thread-safe (no shared state).
#ifndef MIROIR_COORDINATOR_ADDRESS_PROBE_H_
#define MIROIR_COORDINATOR_ADDRESS_PROBE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace miroir::coordinator {

// OK when a TCP connection to `address` (HOST:PORT) is accepted within `timeout`.
// INVALID_ARGUMENT when it is not HOST:PORT; UNAVAILABLE naming the cause
// (refused, no route, timed out, unknown host) otherwise.
absl::Status ProbeTcpAddress(const std::string& address, absl::Duration timeout);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_ADDRESS_PROBE_H_
