#include "coordinator/state_restore.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "coordinator/sqlite_state_store.h"
#include "tests/coordinator/test_util.h"

namespace miroir::coordinator {
namespace {

// A store with an initialised cluster at epoch 7 and one plan.
void Fill(SqliteStateStore& store) {
  ClusterState s;
  Change c;
  c.initialized = true;
  c.bump_epoch = true;  // the write carries the epoch only when asked to
  c.group_order = std::vector<std::string>{"g0"};
  v1::Plan p;
  p.set_id(c.AllocId(s));
  p.set_state(v1::PLAN_RUNNING);
  c.plans[p.id()] = p;
  ASSERT_TRUE(store.Commit(c.ToWrite(7)).ok());
}

TEST(StateRestore, ABackupRestoresWithTheEpochRaised) {
  testing::TempDir dir;
  auto store = SqliteStateStore::Open(dir.path() + "/live.db");
  ASSERT_TRUE(store.ok());
  Fill(**store);
  const std::string backup = dir.path() + "/backup.db";
  ASSERT_TRUE((*store)->BackupTo(backup).ok());
  // A commit after the backup is not in it.
  StateWrite later;
  later.epoch = 9;
  ASSERT_TRUE((*store)->Commit(later).ok());
  // Never overwrites.
  EXPECT_EQ((*store)->BackupTo(backup).code(), absl::StatusCode::kFailedPrecondition);

  std::filesystem::create_directories(dir.path() + "/new");
  const std::string target = dir.path() + "/new/coordinator.db";
  auto r = RestoreStateFile(backup, target, 1000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->backup_epoch, 7u);
  EXPECT_EQ(r->epoch, 1007u);
  EXPECT_EQ(r->plans, 1u);
  EXPECT_FALSE(std::filesystem::exists(target + ".restoring"));
  auto restored = SqliteStateStore::Open(target);
  ASSERT_TRUE(restored.ok());
  auto loaded = (*restored)->Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->epoch, 1007u);
  auto state = ClusterState::FromLoaded(*loaded);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->initialized);
  EXPECT_EQ(state->plans.size(), 1u);
}

TEST(StateRestore, RefusesAnExistingStateOrAFileThatIsNotOneAndLeavesNothing) {
  testing::TempDir dir;
  auto store = SqliteStateStore::Open(dir.path() + "/live.db");
  ASSERT_TRUE(store.ok());
  Fill(**store);
  const std::string backup = dir.path() + "/backup.db";
  ASSERT_TRUE((*store)->BackupTo(backup).ok());
  // Into a data dir that already has a state: refused, the old file untouched.
  const std::string existing = dir.path() + "/live.db";
  const auto size = std::filesystem::file_size(existing);
  auto r = RestoreStateFile(backup, existing);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("already exists"), std::string::npos);
  EXPECT_EQ(std::filesystem::file_size(existing), size);
  // Not a state file, or no file: refused, nothing written.
  const std::string junk = dir.path() + "/junk";
  std::ofstream(junk) << "not a database at all, just some text";
  const std::string target = dir.path() + "/coordinator.db";
  for (const std::string& bad : {junk, dir.path() + "/missing"}) {
    auto st = RestoreStateFile(bad, target);
    EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument) << st.status();
    EXPECT_FALSE(std::filesystem::exists(target));
    EXPECT_FALSE(std::filesystem::exists(target + ".restoring"));
  }
  // An empty (never initialised) state is not a backup either.
  auto empty = SqliteStateStore::Open(dir.path() + "/empty.db");
  ASSERT_TRUE(empty.ok());
  auto e = RestoreStateFile(dir.path() + "/empty.db", target);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(target));
}

}  // namespace
}  // namespace miroir::coordinator
