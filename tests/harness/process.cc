#include "harness/process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "harness/temp_dir.h"

extern char** environ;

namespace miroir::testing {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Closes every fd >= 3 in the child (async-signal-safe).
void CloseInheritedFds() {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (int fd = 3; fd < max; ++fd) close(fd);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Process>> Process::Start(const ProcessOptions& options) {
  std::unique_ptr<Process> p(new Process(options));
  // Everything the child needs is prepared before fork: only async-signal-safe
  // calls happen between fork and exec (the test process has gRPC threads).
  std::vector<std::string> argv_store;
  argv_store.push_back(options.binary);
  for (const auto& a : options.args) argv_store.push_back(a);
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_store;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env_store.emplace_back(*e);
  for (const auto& e : options.env) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::string log = options.log_path.empty() ? "/dev/null" : options.log_path;
  int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("open log ", log, ": ", std::strerror(errno)));
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const bool search_path = options.binary.find('/') == std::string::npos;

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(err)));
  }
  if (pid == 0) {
    // Child.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);  // the parent died before prctl
    setpgid(0, 0);  // own process group: a terminal's ^C goes to the test only
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    CloseInheritedFds();
    if (search_path) {
      execvpe(argv[0], argv.data(), envp.data());
    } else {
      execve(argv[0], argv.data(), envp.data());
    }
    const char msg[] = "[harness] exec failed\n";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
  }
  close(log_fd);
  if (null_fd >= 0) close(null_fd);
  p->pid_ = pid;
  return p;
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_.has_value()) {
    kill(pid_, SIGKILL);
    BlockingReap();
  }
}

bool Process::ReapIfExited() {
  if (pid_ <= 0 || exit_code_.has_value()) return true;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = DecodeWaitStatus(status);
    return true;
  }
  if (r < 0 && errno == ECHILD) {
    exit_code_ = -1;
    return true;
  }
  return false;
}

void Process::BlockingReap() {
  if (pid_ <= 0 || exit_code_.has_value()) return;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  exit_code_ = r == pid_ ? DecodeWaitStatus(status) : -1;
}

bool Process::Running() { return !ReapIfExited(); }

absl::Status Process::Kill() {
  if (!Running()) return absl::OkStatus();
  if (kill(pid_, SIGKILL) != 0 && errno != ESRCH) {
    return absl::InternalError(absl::StrCat("kill ", pid_, ": ", std::strerror(errno)));
  }
  BlockingReap();
  return absl::OkStatus();
}

absl::Status Process::Stop() {
  if (!Running()) return absl::FailedPreconditionError("process has exited");
  if (kill(pid_, SIGSTOP) != 0) {
    return absl::InternalError(absl::StrCat("SIGSTOP ", pid_, ": ", std::strerror(errno)));
  }
  // Wait (bounded) until the kernel reports it stopped.
  for (int i = 0; i < 200; ++i) {
    std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid_, "/stat"));
    size_t close_paren = stat.rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < stat.size() &&
        (stat[close_paren + 2] == 'T' || stat[close_paren + 2] == 't')) {
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return absl::DeadlineExceededError("process did not stop");
}

absl::Status Process::Cont() {
  if (!Running()) return absl::FailedPreconditionError("process has exited");
  if (kill(pid_, SIGCONT) != 0) {
    return absl::InternalError(absl::StrCat("SIGCONT ", pid_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Process::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() >= deadline) return absl::DeadlineExceededError("process still running");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return *exit_code_;
}

int Process::Terminate(absl::Duration grace) {
  if (Running()) {
    kill(pid_, SIGTERM);
    kill(pid_, SIGCONT);
    if (!Wait(grace).ok()) {
      kill(pid_, SIGKILL);
      BlockingReap();
    }
  }
  return exit_code_.value_or(-1);
}

std::string Process::ReadLog() const { return ReadFileOrEmpty(options_.log_path); }

std::string Process::LogTail(int lines) const {
  std::vector<std::string> all = absl::StrSplit(ReadLog(), '\n');
  size_t from = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  std::vector<std::string> tail(all.begin() + from, all.end());
  return absl::StrJoin(tail, "\n");
}

absl::StatusOr<RunResult> RunToCompletion(const std::string& binary,
                                          const std::vector<std::string>& args,
                                          const std::string& work_dir, absl::Duration timeout) {
  static std::atomic<int> counter{0};
  int n = counter.fetch_add(1);
  std::string out_path = absl::StrCat(work_dir, "/run-", getpid(), "-", n, ".out");
  std::string err_path = absl::StrCat(work_dir, "/run-", getpid(), "-", n, ".err");
  // stdout and stderr separately: the shell-free way is two fds, so wrap in sh.
  std::string cmd = "exec \"$0\" \"$@\" >'" + out_path + "' 2>'" + err_path + "'";
  ProcessOptions opts;
  opts.binary = "/bin/sh";
  opts.args = {"-c", cmd, binary};
  for (const auto& a : args) opts.args.push_back(a);
  auto p = Process::Start(opts);
  if (!p.ok()) return p.status();
  RunResult result;
  auto code = (*p)->Wait(timeout);
  if (!code.ok()) {
    result.timed_out = true;
    (void)(*p)->Kill();
    result.exit_code = (*p)->exit_code().value_or(-1);
  } else {
    result.exit_code = *code;
  }
  result.stdout_text = ReadFileOrEmpty(out_path);
  result.stderr_text = ReadFileOrEmpty(err_path);
  RemoveAll(out_path);
  RemoveAll(err_path);
  return result;
}

}  // namespace miroir::testing
