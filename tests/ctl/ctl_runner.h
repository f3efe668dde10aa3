// Runs the real miroir-ctl binary (MIROIR_CTL_BIN) and captures its exit code,
// stdout and stderr. Used by the tests in tests/ctl only.
#ifndef MIROIR_TESTS_CTL_CTL_RUNNER_H_
#define MIROIR_TESTS_CTL_CTL_RUNNER_H_

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace miroir::testing {

struct CtlResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  // Lines of stderr (no trailing empty line).
  int ErrLines() const {
    int n = 0;
    for (char c : err) n += c == '\n';
    return n;
  }
};

inline std::string ReadWhole(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// `env` entries ("K=V") are added to the inherited environment (MIROIR_COORDINATOR
// is always removed first so the tests do not depend on the caller's shell).
inline CtlResult RunCtl(const std::vector<std::string>& args,
                        const std::vector<std::string>& env = {}) {
  static int counter = 0;
  const std::string base = std::string(::testing::TempDir()) + "/ctl_" + std::to_string(getpid()) +
                           "_" + std::to_string(counter++);
  const std::string out_path = base + ".out", err_path = base + ".err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv_s = {MIROIR_CTL_BIN};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("MIROIR_COORDINATOR=", 0) == 0) continue;
    env_s.push_back(*e);
  }
  env_s.insert(env_s.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  CtlResult r;
  pid_t pid;
  if (posix_spawn(&pid, MIROIR_CTL_BIN, &fa, nullptr, argv.data(), envp.data()) == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  posix_spawn_file_actions_destroy(&fa);
  r.out = ReadWhole(out_path);
  r.err = ReadWhole(err_path);
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  return r;
}

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_CTL_CTL_RUNNER_H_
