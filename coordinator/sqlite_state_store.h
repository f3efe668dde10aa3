// SqliteStateStore: the embedded StateStore, one SQLite file in the data dir,
// WAL journal, synchronous=FULL, versioned schema with a migrations table.
// Thread-safe (one connection behind a mutex; calls are short).
#ifndef MIROIR_COORDINATOR_SQLITE_STATE_STORE_H_
#define MIROIR_COORDINATOR_SQLITE_STATE_STORE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/state_store.h"

struct sqlite3;

namespace miroir::coordinator {

class SqliteStateStore : public StateStore {
 public:
  // Schema version this binary writes.
  static constexpr int kSchemaVersion = 2;

  // Opens (creating if needed) `path` and migrates the schema. A file written by a
  // newer schema is refused with FAILED_PRECONDITION.
  static absl::StatusOr<std::unique_ptr<SqliteStateStore>> Open(const std::string& path);
  ~SqliteStateStore() override;

  absl::StatusOr<LoadedState> Load() override;
  absl::Status Commit(const StateWrite& write) override;
  absl::StatusOr<std::vector<std::string>> PlanEvents(uint64_t plan_id) override;
  absl::StatusOr<std::vector<std::string>> RecentAudit(int limit) override;
  // The SQLite online backup API (sqlite3_backup_*) into `path`, in one step
  // under this store's lock (no commit interleaves); the copy is then synced.
  // FAILED_PRECONDITION when `path` exists; the partial file is removed on error.
  absl::Status BackupTo(const std::string& path) override;

  // Schema version stored in the file.
  absl::StatusOr<int> SchemaVersion();

 private:
  explicit SqliteStateStore(sqlite3* db) : db_(db) {}
  absl::Status Exec(const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CommitLocked(const StateWrite& write) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_SQLITE_STATE_STORE_H_
