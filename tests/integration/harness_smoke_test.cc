// Proves each piece of the multi-process harness on real processes: Process
// (logs, stop/continue, terminate, reaping), ports, TempDir and RedisNode (PING,
// AOF survives SIGKILL + restart, wipe-restart is a fresh node, reaped at the end).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "harness/ports.h"
#include "harness/process.h"
#include "harness/redis_node.h"
#include "harness/temp_dir.h"

namespace miroir::testing {
namespace {

using ::testing::HasSubstr;

bool PidAlive(pid_t pid) { return kill(pid, 0) == 0; }

char ProcState(pid_t pid) {
  std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  size_t p = stat.rfind(')');
  return p == std::string::npos || p + 2 >= stat.size() ? '?' : stat[p + 2];
}

TEST(HarnessProcess, CapturesOutputAndExitCode) {
  TempDir tmp("smoke");
  auto r = RunToCompletion("/bin/sh", {"-c", "echo out; echo err >&2; exit 3"}, tmp.path());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->stdout_text, "out\n");
  EXPECT_EQ(r->stderr_text, "err\n");
  EXPECT_FALSE(r->timed_out);
}

TEST(HarnessProcess, RunToCompletionKillsAtTimeout) {
  TempDir tmp("smoke");
  auto r = RunToCompletion("/bin/sleep", {"30"}, tmp.path(), absl::Milliseconds(200));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 128 + SIGKILL);
}

TEST(HarnessProcess, LogsStopsContinuesAndTerminates) {
  TempDir tmp("smoke");
  ProcessOptions opts;
  opts.binary = "/bin/sh";
  opts.args = {"-c", "echo started; echo oops >&2; exec sleep 60"};
  opts.log_path = tmp.File("sh.log");
  auto p = Process::Start(opts);
  ASSERT_TRUE(p.ok()) << p.status();
  for (int i = 0; i < 500 && (*p)->ReadLog().find("oops") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_THAT((*p)->ReadLog(), HasSubstr("started"));
  EXPECT_THAT((*p)->ReadLog(), HasSubstr("oops"));
  ASSERT_TRUE((*p)->Stop().ok());
  EXPECT_EQ(ProcState((*p)->pid()), 'T');
  ASSERT_TRUE((*p)->Cont().ok());
  for (int i = 0; i < 200 && ProcState((*p)->pid()) == 'T'; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_NE(ProcState((*p)->pid()), 'T');
  // Terminate works on a stopped process too.
  ASSERT_TRUE((*p)->Stop().ok());
  pid_t pid = (*p)->pid();
  EXPECT_EQ((*p)->Terminate(absl::Seconds(5)), 128 + SIGTERM);
  EXPECT_FALSE((*p)->Running());
  EXPECT_FALSE(PidAlive(pid));  // reaped: not even a zombie
}

TEST(HarnessProcess, DestructorKillsAndReaps) {
  TempDir tmp("smoke");
  pid_t pid;
  {
    auto p = Process::Start({"/bin/sleep", {"60"}, tmp.File("s.log"), {}});
    ASSERT_TRUE(p.ok());
    pid = (*p)->pid();
    EXPECT_TRUE(PidAlive(pid));
  }
  EXPECT_FALSE(PidAlive(pid));
}

TEST(HarnessProcess, ExecFailureIsExit127) {
  TempDir tmp("smoke");
  auto p = Process::Start({"/nonexistent/binary", {}, tmp.File("x.log"), {}});
  ASSERT_TRUE(p.ok());
  auto code = (*p)->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 127);
  EXPECT_THAT((*p)->ReadLog(), HasSubstr("exec failed"));
}

TEST(HarnessPorts, PickFreePortIsBindable) {
  auto port = PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_GT(*port, 0);
  auto second = PickFreePort();
  ASSERT_TRUE(second.ok());
  EXPECT_GT(*second, 0);
}

TEST(HarnessPorts, PortFileIsReadAndExitIsReportedEarly) {
  TempDir tmp("smoke");
  std::string file = tmp.File("port");
  auto p = Process::Start({"/bin/sh",
                           {"-c", "sleep 0.1; printf '4242\\n' > " + file + "; exec sleep 30"},
                           tmp.File("p.log"),
                           {}});
  ASSERT_TRUE(p.ok());
  auto port = WaitForPortFile(file, absl::Seconds(10), p->get());
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(*port, 4242);

  auto dead = Process::Start({"/bin/sh", {"-c", "echo boom; exit 2"}, tmp.File("d.log"), {}});
  ASSERT_TRUE(dead.ok());
  auto none = WaitForPortFile(tmp.File("never"), absl::Seconds(30), dead->get());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("boom"));
}

TEST(HarnessTempDir, RemovedWhenTestPasses) {
  std::string path;
  {
    TempDir tmp("smoke");
    path = tmp.path();
    ASSERT_TRUE(WriteFile(tmp.File("a"), "x"));
    EXPECT_EQ(ReadFileOrEmpty(tmp.File("a")), "x");
    EXPECT_TRUE(std::filesystem::is_directory(tmp.Subdir("b/c")));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(HarnessRedisNode, AnswersAndKeepsAofDataAcrossSigkill) {
  TempDir tmp("smoke");
  auto node = RedisNode::Start(tmp.Subdir("r0"));
  ASSERT_TRUE(node.ok()) << node.status();
  RedisNode& r = **node;
  EXPECT_EQ(*r.Command({"PING"}), "PONG");
  auto policy = r.Command({"CONFIG", "GET", "maxmemory-policy"});
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(*policy, "maxmemory-policy\nnoeviction");
  EXPECT_EQ(*r.Command({"CONFIG", "GET", "appendfsync"}), "appendfsync\nalways");
  EXPECT_EQ(*r.Command({"CONFIG", "GET", "save"}), "save\n");

  ASSERT_EQ(*r.Command({"SET", "k", "v1"}), "OK");
  int port = r.port();
  pid_t old_pid = r.process()->pid();
  ASSERT_TRUE(r.Kill().ok());
  EXPECT_FALSE(PidAlive(old_pid));
  EXPECT_FALSE(r.Command({"PING"}).ok());

  ASSERT_TRUE(r.Restart().ok());
  EXPECT_EQ(r.port(), port);
  EXPECT_EQ(*r.Command({"GET", "k"}), "v1");  // AOF fsync'd before the reply

  ASSERT_TRUE(r.WipeRestart().ok());
  EXPECT_EQ(r.port(), port);
  EXPECT_EQ(*r.Command({"GET", "k"}), "(nil)");
  EXPECT_EQ(*r.Command({"DBSIZE"}), "0");
}

TEST(HarnessRedisNode, ReapedWhenDestroyed) {
  TempDir tmp("smoke");
  pid_t pid;
  int port;
  {
    auto node = RedisNode::Start(tmp.Subdir("r0"));
    ASSERT_TRUE(node.ok()) << node.status();
    pid = (*node)->process()->pid();
    port = (*node)->port();
  }
  EXPECT_FALSE(PidAlive(pid));
  EXPECT_FALSE(RedisCommand(LoopbackAddress(port), {"PING"}, 300).ok());
}

TEST(HarnessRedisNode, StoppedNodeTimesOutThenAnswersAfterCont) {
  TempDir tmp("smoke");
  auto node = RedisNode::Start(tmp.Subdir("r0"));
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE((*node)->Stop().ok());
  EXPECT_FALSE(RedisCommand((*node)->address(), {"PING"}, 200).ok());
  ASSERT_TRUE((*node)->Cont().ok());
  EXPECT_EQ(*RedisCommand((*node)->address(), {"PING"}, 2000), "PONG");
}

}  // namespace
}  // namespace miroir::testing
