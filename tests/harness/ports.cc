#include "harness/ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "harness/process.h"
#include "harness/temp_dir.h"

namespace miroir::testing {
namespace {

absl::Status ExitedError(Process* process, const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat(process->options().binary, " exited with ",
                                                    process->exit_code().value_or(-1), " before ",
                                                    what, "; log tail:\n", process->LogTail()));
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("bind: ", std::strerror(err)));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::StatusOr<int> WaitForPortFile(const std::string& path, absl::Duration timeout,
                                    Process* process) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::string text = ReadFileOrEmpty(path);
    int port = 0;
    if (absl::EndsWith(text, "\n") && absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) &&
        port > 0) {
      return port;
    }
    if (process != nullptr && !process->Running()) return ExitedError(process, "writing " + path);
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("no port in ", path, " after ", absl::FormatDuration(timeout)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

absl::Status WaitForTcp(int port, absl::Duration timeout, Process* process) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (fd >= 0) close(fd);
    if (ok) return absl::OkStatus();
    if (process != nullptr && !process->Running()) {
      return ExitedError(process, absl::StrCat("listening on ", port));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("nothing listens on 127.0.0.1:", port));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string LoopbackAddress(int port) { return absl::StrCat("127.0.0.1:", port); }

}  // namespace miroir::testing
