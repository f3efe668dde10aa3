// Process: one child program a multi-process test starts (redis-server,
// miroir-coordinator, miroir-worker, miroir-ctl). Its stdout and stderr go to a
// log file; it is killed and reaped by the destructor, so no child outlives its
// test, also when the test fails or aborts: the child is started with
// PR_SET_PDEATHSIG=SIGKILL (bound to the thread that calls Start — start
// processes from the test's main thread or a thread that outlives them).
//
// Thread-compatible: one owner calls its methods.
#ifndef MIROIR_TESTS_HARNESS_PROCESS_H_
#define MIROIR_TESTS_HARNESS_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace miroir::testing {

struct ProcessOptions {
  std::string binary;             // path of the executable (or a name found in PATH)
  std::vector<std::string> args;  // argv[1..]
  std::string log_path;           // stdout+stderr, appended; "" = /dev/null
  std::vector<std::string> env;   // extra "NAME=value" entries added to the environment
};

class Process {
 public:
  // Forks and execs. An exec failure shows as an exit with code 127 and a line in
  // the log. INTERNAL when the log cannot be opened or fork fails.
  static absl::StatusOr<std::unique_ptr<Process>> Start(const ProcessOptions& options);

  // SIGKILLs the child if still running and reaps it.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return options_.log_path; }
  const ProcessOptions& options() const { return options_; }

  // True while the child has not exited (reaps it if it has).
  bool Running();
  // Exit status once it exited: the exit code, or 128+signal when killed.
  std::optional<int> exit_code() const { return exit_code_; }

  // SIGKILL and reap. OK when already exited.
  absl::Status Kill();
  // SIGSTOP / SIGCONT (the zombie-writer tests).
  absl::Status Stop();
  absl::Status Cont();
  // SIGTERM (with SIGCONT, in case it is stopped), wait up to `grace`, then
  // SIGKILL. Returns the exit code (see exit_code()).
  int Terminate(absl::Duration grace = absl::Seconds(5));
  // Waits up to `timeout` for the child to exit by itself. DEADLINE_EXCEEDED if it
  // has not (the child keeps running).
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // The log file's text so far.
  std::string ReadLog() const;
  // Last `lines` lines of the log (for failure messages).
  std::string LogTail(int lines = 30) const;

 private:
  explicit Process(ProcessOptions options) : options_(std::move(options)) {}
  // Non-blocking reap; records exit_code_.
  bool ReapIfExited();
  void BlockingReap();

  ProcessOptions options_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Runs `options` to completion (bounded by `timeout`, then SIGKILL) and returns
// its exit code with its output captured.
struct RunResult {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
  bool timed_out = false;
};
absl::StatusOr<RunResult> RunToCompletion(const std::string& binary,
                                          const std::vector<std::string>& args,
                                          const std::string& work_dir,
                                          absl::Duration timeout = absl::Seconds(60));

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_PROCESS_H_
