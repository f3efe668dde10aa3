// Coordinator memory with 10 indexes × 4,096 shards (issue 3: RSS < 200 MB),
// measured on the real core (SQLite file in a temp dir, routing tables, view),
// against the baseline RSS of the process before the coordinator is created.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "coordinator/coordinator.h"
#include "coordinator/sqlite_state_store.h"

namespace {

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

}  // namespace

int main() {
  using namespace miroir::coordinator;
  std::string tmpl = (std::filesystem::temp_directory_path() / "miroir-rss-XXXXXX").string();
  const std::string dir = mkdtemp(tmpl.data());
  const long base = RssKb();
  std::string fleet = "groups:\n";
  for (int g = 0; g < 4; ++g) {
    fleet += absl::StrCat("  - id: g", g, "\n    nodes:\n");
    for (int n = 0; n < 8; ++n) {
      fleet += absl::StrCat("      - {id: g", g, "n", n,
                            ", address: \"127.0.0.1:", 6000 + g * 8 + n, "\"}\n");
    }
  }
  // Each measurement runs in a fresh child so neither sees the other's heap.
  pid_t builder = fork();
  if (builder == 0) {
    auto store = SqliteStateStore::Open(dir + "/coordinator.db");
    auto core =
        Coordinator::Create(CoordinatorConfig(), std::move(*store), miroir::SystemClock::Default());
    if (!core.ok() || !(*core)->InitCluster(fleet, "fleet").ok()) _exit(1);
    for (int i = 0; i < 10; ++i) {
      auto r = (*core)->CreateIndex(absl::StrCat("index", i), 4096, 2);
      if (!r.ok()) _exit(1);
    }
    const long built = RssKb();
    std::printf("after creating 10 indexes x 4096 shards: RSS %.1f MB (baseline %.1f MB)\n",
                built / 1024.0, base / 1024.0);
    std::fflush(stdout);
    _exit(0);
  }
  int build_status = 0;
  waitpid(builder, &build_status, 0);
  if (build_status != 0) return 1;
  // A restarted coordinator loads the same state from the file (fresh process).
  pid_t pid = fork();
  if (pid == 0) {
    const long before = RssKb();
    auto store = SqliteStateStore::Open(dir + "/coordinator.db");
    auto core =
        Coordinator::Create(CoordinatorConfig(), std::move(*store), miroir::SystemClock::Default());
    if (!core.ok()) _exit(1);
    std::printf("fresh process loading it from SQLite: RSS %.1f MB (before load %.1f MB)\n",
                RssKb() / 1024.0, before / 1024.0);
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::filesystem::remove_all(dir);
  return 0;
}
