#include "harness/tcp_proxy.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <list>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "harness/ports.h"

namespace miroir::testing {
namespace {

constexpr size_t kMaxBufferedPerDirection = 16 << 20;  // stop reading beyond this
constexpr size_t kReadChunk = 64 << 10;

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

// Blocking connect with a short bound; returns a non-blocking fd or -1.
int ConnectUpstream(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_in a = Loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    if (errno != EINPROGRESS) {
      close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, 1000) != 1) {
      close(fd);
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      close(fd);
      return -1;
    }
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Socket inodes open in process `pid` (its fds "socket:[N]").
std::set<uint64_t> SocketInodesOf(pid_t pid) {
  std::set<uint64_t> out;
  std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  char target[128];
  while (dirent* e = readdir(d)) {
    std::string path = absl::StrCat(dir, "/", e->d_name);
    ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    unsigned long long inode = 0;
    if (std::sscanf(target, "socket:[%llu]", &inode) == 1) out.insert(inode);
  }
  closedir(d);
  return out;
}

// Inode of the IPv4 socket whose local port is `local_port` and remote port
// `remote_port` (the client end of a proxied connection), 0 if not found.
uint64_t ClientSocketInode(int local_port, int remote_port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string sl, local, remote, st, queues, timer, retr, uid, timeout;
    unsigned long long inode = 0;
    if (!(ls >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >>
          inode)) {
      continue;
    }
    auto port_of = [](const std::string& a) {
      size_t c = a.find(':');
      return c == std::string::npos ? -1
                                    : static_cast<int>(std::stoul(a.substr(c + 1), nullptr, 16));
    };
    if (port_of(local) == local_port && port_of(remote) == remote_port) return inode;
  }
  return 0;
}

}  // namespace

struct TcpProxy::Conn {
  struct Chunk {
    absl::Time due;
    std::string data;
    size_t offset = 0;
  };
  struct Direction {
    std::deque<Chunk> pending;
    size_t bytes = 0;
    bool read_eof = false;
    bool shut = false;  // SHUT_WR sent to the destination
  };
  int client = -1;
  int server = -1;  // -1 in blackhole
  Direction up;     // client -> server
  Direction down;   // server -> client
  bool dead = false;
  // HoldPeer: whether the client end belongs to the held process (-1 unknown).
  int owned_by_held = -1;
  pid_t owner_checked_for = 0;
};

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(int target_port, int listen_port) {
  std::unique_ptr<TcpProxy> proxy(new TcpProxy(target_port));
  proxy->port_ = listen_port;
  if (!proxy->OpenListener()) {
    return absl::InternalError(absl::StrCat("proxy cannot listen: ", std::strerror(errno)));
  }
  proxy->thread_ = std::thread([p = proxy.get()] { p->Loop(); });
  return proxy;
}

bool TcpProxy::OpenListener() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = Loopback(port_);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 128) != 0) {
    close(fd);
    return false;
  }
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  listen_fd_ = fd;
  return true;
}

TcpProxy::~TcpProxy() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

std::string TcpProxy::address() const { return LoopbackAddress(port_); }

void TcpProxy::SetMode(Mode m) {
  absl::MutexLock l(&mu_);
  mode_ = m;
  hold_pid_ = 0;
  peer_cut_ = false;
}

void TcpProxy::HoldPeer(pid_t pid) {
  absl::MutexLock l(&mu_);
  mode_ = Mode::kPass;
  hold_pid_ = pid;
  peer_cut_ = false;
}

void TcpProxy::CutPeer(pid_t pid) {
  absl::MutexLock l(&mu_);
  mode_ = Mode::kPass;
  hold_pid_ = pid;
  peer_cut_ = true;
}

void TcpProxy::Delay(absl::Duration each_direction) {
  absl::MutexLock l(&mu_);
  delay_ = each_direction;
  mode_ = Mode::kDelay;
  hold_pid_ = 0;
}

TcpProxy::Mode TcpProxy::mode() const {
  absl::MutexLock l(&mu_);
  return mode_;
}

void TcpProxy::Loop() {
  std::list<Conn> conns;
  std::vector<char> buf(kReadChunk);
  bool peer_cut = false;
  auto close_conn = [&](Conn& c) {
    if (c.client >= 0) close(c.client);
    if (c.server >= 0) close(c.server);
    c.client = c.server = -1;
    buffered_.fetch_sub(c.up.bytes + c.down.bytes);
    c.up.bytes = c.down.bytes = 0;
    c.dead = true;
  };

  // HoldPeer: classify each connection once per held pid.
  auto held_by_peer = [&](Conn& c, pid_t pid) {
    if (pid == 0) return false;
    if (c.owner_checked_for != pid) {
      c.owner_checked_for = pid;
      c.owned_by_held = 0;
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      if (getpeername(c.client, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
        uint64_t inode = ClientSocketInode(ntohs(peer.sin_port), port_);
        if (inode != 0 && SocketInodesOf(pid).count(inode)) c.owned_by_held = 1;
      }
    }
    return c.owned_by_held == 1;
  };

  while (!stop_.load()) {
    Mode mode;
    absl::Duration delay;
    pid_t hold_pid;
    {
      absl::MutexLock l(&mu_);
      mode = mode_;
      delay = delay_;
      hold_pid = hold_pid_;
      peer_cut = peer_cut_;
    }
    absl::Time now = absl::Now();

    if (mode == Mode::kCut) {
      for (Conn& c : conns) close_conn(c);
      conns.clear();
      if (listen_fd_ >= 0) {
        close(listen_fd_);
        listen_fd_ = -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (listen_fd_ < 0 && !OpenListener()) {  // reopen after a cut, same port
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }

    // Build the poll set: listener, then per connection client and server.
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    absl::Time next_due = now + absl::Milliseconds(20);
    if (peer_cut) {
      for (Conn& c : conns) {
        if (held_by_peer(c, hold_pid)) close_conn(c);
      }
      conns.remove_if([](const Conn& c) { return c.dead; });
    }
    uint64_t peer_held = 0, peer_held_bytes = 0;
    for (Conn& c : conns) {
      if (!held_by_peer(c, hold_pid)) continue;
      ++peer_held;
      peer_held_bytes += c.up.bytes + c.down.bytes;
    }
    peer_held_.store(peer_held);
    peer_held_bytes_.store(peer_held_bytes);
    bool conn_held = false;  // the connection being polled is held by HoldPeer
    auto want_write = [&](const Conn::Direction& d) {
      if (mode == Mode::kHold || conn_held || d.pending.empty()) return false;
      if (d.pending.front().due <= now) return true;
      next_due = std::min(next_due, d.pending.front().due);
      return false;
    };
    for (Conn& c : conns) {
      conn_held = held_by_peer(c, hold_pid);
      short cev = 0, sev = 0;
      if (!c.up.read_eof && c.up.bytes < kMaxBufferedPerDirection) cev |= POLLIN;
      if (want_write(c.down)) cev |= POLLOUT;
      if (c.server >= 0) {
        if (!c.down.read_eof && c.down.bytes < kMaxBufferedPerDirection) sev |= POLLIN;
        if (want_write(c.up)) sev |= POLLOUT;
      }
      fds.push_back({c.client, cev, 0});
      fds.push_back({c.server, sev, 0});  // fd -1 is ignored by poll
    }
    int timeout_ms =
        static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(next_due - now), 0, 20));
    int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) break;
    now = absl::Now();
    {
      // A mode set before a client connected or sent must apply to it.
      absl::MutexLock l(&mu_);
      mode = mode_;
      delay = delay_;
      hold_pid = hold_pid_;
      peer_cut = peer_cut_;
    }
    if (mode == Mode::kCut) continue;

    // New connections.
    if (fds[0].revents & POLLIN) {
      while (true) {
        int cfd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break;
        accepted_.fetch_add(1);
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        Conn c;
        c.client = cfd;
        if (mode != Mode::kBlackhole) {
          c.server = ConnectUpstream(target_port_);
          if (c.server < 0) {
            close(cfd);
            continue;
          }
        }
        conns.push_back(std::move(c));
      }
    }

    // I/O per connection (only those that were in the poll set).
    size_t i = 1;
    for (auto it = conns.begin(); it != conns.end(); ++it) {
      if (i + 1 >= fds.size()) break;  // accepted this round: next iteration
      Conn& c = *it;
      pollfd& cp = fds[i];
      pollfd& sp = fds[i + 1];
      i += 2;
      auto pump_read = [&](int fd, Conn::Direction& d, short revents) {
        if (!(revents & (POLLIN | POLLHUP | POLLERR))) return true;
        ssize_t r = read(fd, buf.data(), buf.size());
        if (r > 0) {
          if (mode == Mode::kBlackhole) return true;  // dropped
          absl::Time due = mode == Mode::kDelay ? now + delay : now;
          d.pending.push_back({due, std::string(buf.data(), r), 0});
          d.bytes += r;
          buffered_.fetch_add(r);
          return true;
        }
        if (r == 0) {
          d.read_eof = true;
          return true;
        }
        return errno == EAGAIN || errno == EINTR;
      };
      const bool held = mode == Mode::kHold || held_by_peer(c, hold_pid);
      auto pump_write = [&](int fd, Conn::Direction& d, short revents) {
        if (!(revents & POLLOUT) || held) return true;
        while (!d.pending.empty() && d.pending.front().due <= now) {
          Conn::Chunk& ch = d.pending.front();
          ssize_t w = write(fd, ch.data.data() + ch.offset, ch.data.size() - ch.offset);
          if (w < 0) return errno == EAGAIN || errno == EINTR;
          ch.offset += w;
          d.bytes -= w;
          buffered_.fetch_sub(w);
          forwarded_.fetch_add(w);
          if (ch.offset < ch.data.size()) return true;
          d.pending.pop_front();
        }
        return true;
      };
      bool ok = pump_read(c.client, c.up, cp.revents);
      if (ok && c.server >= 0) ok = pump_read(c.server, c.down, sp.revents);
      if (ok && c.server >= 0) ok = pump_write(c.server, c.up, sp.revents);
      if (ok) ok = pump_write(c.client, c.down, cp.revents);
      // Half-close once a direction is drained after EOF.
      if (ok && c.up.read_eof && c.up.pending.empty() && !c.up.shut) {
        if (c.server >= 0) shutdown(c.server, SHUT_WR);
        c.up.shut = true;
      }
      if (ok && c.down.read_eof && c.down.pending.empty() && !c.down.shut) {
        shutdown(c.client, SHUT_WR);
        c.down.shut = true;
      }
      bool finished = c.up.shut && (c.server < 0 || c.down.shut);
      if (!ok || finished) close_conn(c);
    }
    conns.remove_if([](const Conn& c) { return c.dead; });
  }
  for (Conn& c : conns) close_conn(c);
}

}  // namespace miroir::testing
