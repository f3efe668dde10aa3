// TcpProxy: a loopback TCP proxy in front of one process (e.g. between the
// workers and one redis node: the fleet YAML names the proxy's address for that
// node), so a test can break the path without touching either side. Modes:
//
//   pass       forward both ways as fast as possible (the default)
//   cut        close every connection and refuse new ones (listener closed)
//   delay      forward each chunk `delay` after it was read, both directions
//   hold       keep reading and buffering (bounded), forward nothing; Release()
//              (or any other mode) lets the buffered bytes through in order
//   blackhole  accept, read and drop everything; never answer
//
// HoldPeer(pid) holds (as `hold`) only the connections whose client end is a
// socket of process `pid` (found through /proc/net/tcp and /proc/PID/fd), so a
// test can stall ONE worker's traffic to a node while the others pass. Any mode
// change (Release() included) ends it and lets the held bytes through in order.
// CutPeer(pid) cuts (as `cut`) only that process's connections: they are closed,
// what they buffered is dropped, and new ones are closed once classified (an
// asymmetric partition); any mode change ends it.
//
// One event-loop thread serves every connection; the destructor stops it and
// closes everything (bounded). Every method is thread-safe.
#ifndef MIROIR_TESTS_HARNESS_TCP_PROXY_H_
#define MIROIR_TESTS_HARNESS_TCP_PROXY_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace miroir::testing {

class TcpProxy {
 public:
  enum class Mode { kPass, kCut, kDelay, kHold, kBlackhole };

  // Listens on 127.0.0.1:listen_port (0 = OS-assigned) and forwards to
  // 127.0.0.1:target_port.
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(int target_port, int listen_port = 0);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  std::string address() const;  // "127.0.0.1:PORT"
  int target_port() const { return target_port_; }

  void Pass() { SetMode(Mode::kPass); }
  void Cut() { SetMode(Mode::kCut); }
  void Delay(absl::Duration each_direction);
  void Hold() { SetMode(Mode::kHold); }
  void Release() { SetMode(Mode::kPass); }
  void Blackhole() { SetMode(Mode::kBlackhole); }
  Mode mode() const;
  // Holds only the connections owned by `pid` (existing and new); the rest pass.
  void HoldPeer(pid_t pid);
  // Closes the connections owned by `pid` (existing and new); the rest pass.
  void CutPeer(pid_t pid);
  // Connections currently held by HoldPeer (0 when none or not holding).
  uint64_t peer_connections_held() const { return peer_held_.load(); }
  // Bytes buffered (not forwarded) on the connections HoldPeer holds.
  uint64_t peer_bytes_held() const { return peer_held_bytes_.load(); }

  // Counters for assertions (monotonic).
  uint64_t connections_accepted() const { return accepted_.load(); }
  uint64_t bytes_forwarded() const { return forwarded_.load(); }
  // Bytes read and buffered but not yet forwarded (hold/delay).
  uint64_t bytes_buffered() const { return buffered_.load(); }

 private:
  struct Conn;
  TcpProxy(int target_port) : target_port_(target_port) {}
  void SetMode(Mode m);
  void Loop();
  bool OpenListener();

  const int target_port_;
  int port_ = 0;
  int listen_fd_ = -1;  // loop thread only after Start
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> buffered_{0};
  std::atomic<uint64_t> peer_held_{0};
  std::atomic<uint64_t> peer_held_bytes_{0};
  mutable absl::Mutex mu_;
  Mode mode_ ABSL_GUARDED_BY(mu_) = Mode::kPass;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  pid_t hold_pid_ ABSL_GUARDED_BY(mu_) = 0;     // HoldPeer/CutPeer: 0 = off
  bool peer_cut_ ABSL_GUARDED_BY(mu_) = false;  // CutPeer: close instead of hold
  std::thread thread_;
};

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_TCP_PROXY_H_
