#include "coordinator/sqlite_state_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace miroir::coordinator {
namespace {

absl::Status SqlError(sqlite3* db, const std::string& what) {
  return absl::InternalError(absl::StrCat("sqlite: ", what, ": ", sqlite3_errmsg(db)));
}

// RAII prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void BindText(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void BindInt(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  std::string ColumnBytes(int i) {
    const void* p = sqlite3_column_blob(stmt_, i);
    int n = sqlite3_column_bytes(stmt_, i);
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::FailedPreconditionError(absl::StrCat("cannot open state file ", path, ": ", msg));
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<SqliteStateStore> store(new SqliteStateStore(db));
  absl::MutexLock l(&store->mu_);
  MIROIR_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  MIROIR_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  MIROIR_RETURN_IF_ERROR(store->Migrate());
  return store;
}

SqliteStateStore::~SqliteStateStore() {
  absl::MutexLock l(&mu_);
  sqlite3_close(db_);
}

absl::Status SqliteStateStore::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite: ", msg, " in: ", sql.substr(0, 60)));
  }
  return absl::OkStatus();
}

absl::Status SqliteStateStore::Migrate() {
  MIROIR_RETURN_IF_ERROR(
      Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
           "applied_ms INTEGER NOT NULL)"));
  int current = 0;
  {
    Stmt st(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!st.ok() || sqlite3_step(st.get()) != SQLITE_ROW) return SqlError(db_, "schema version");
    current = sqlite3_column_int(st.get(), 0);
  }
  if (current > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state file has schema version ", current, ", newer than this binary's ", kSchemaVersion));
  }
  // Migration steps, in order; each runs in its own transaction.
  static const char* kMigrations[] = {
      // 1: objects, events, meta.
      "CREATE TABLE objects (kind TEXT NOT NULL, id TEXT NOT NULL, value BLOB NOT NULL, "
      "PRIMARY KEY (kind, id)) WITHOUT ROWID;"
      "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, plan_id INTEGER NOT NULL, "
      "value BLOB NOT NULL);"
      "CREATE INDEX events_by_plan ON events (plan_id, seq);"
      "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT INTO meta (key, value) VALUES ('epoch', '0');",
      // 2: the audit log (coordinator/audit.h).
      "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, value BLOB NOT NULL);",
  };
  static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);
  for (int v = current + 1; v <= kSchemaVersion; ++v) {
    MIROIR_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status s = Exec(kMigrations[v - 1]);
    if (s.ok()) {
      s = Exec(absl::StrCat("INSERT INTO schema_migrations (version, applied_ms) VALUES (", v,
                            ", CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"));
    }
    if (!s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return s;
    }
    MIROIR_RETURN_IF_ERROR(Exec("COMMIT"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> SqliteStateStore::SchemaVersion() {
  absl::MutexLock l(&mu_);
  Stmt st(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!st.ok() || sqlite3_step(st.get()) != SQLITE_ROW) return SqlError(db_, "schema version");
  return sqlite3_column_int(st.get(), 0);
}

absl::StatusOr<LoadedState> SqliteStateStore::Load() {
  absl::MutexLock l(&mu_);
  LoadedState out;
  {
    Stmt st(db_, "SELECT value FROM meta WHERE key = 'epoch'");
    if (!st.ok()) return SqlError(db_, "load epoch");
    if (sqlite3_step(st.get()) == SQLITE_ROW) {
      out.epoch = static_cast<uint64_t>(std::stoull(st.ColumnBytes(0)));
    }
  }
  {
    Stmt st(db_, "SELECT kind, id, value FROM objects ORDER BY kind, id");
    if (!st.ok()) return SqlError(db_, "load objects");
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      out.objects[st.ColumnBytes(0)][st.ColumnBytes(1)] = st.ColumnBytes(2);
    }
    if (rc != SQLITE_DONE) return SqlError(db_, "load objects");
  }
  return out;
}

absl::Status SqliteStateStore::CommitLocked(const StateWrite& write) {
  if (write.epoch.has_value()) {
    Stmt get(db_, "SELECT value FROM meta WHERE key = 'epoch'");
    if (!get.ok() || sqlite3_step(get.get()) != SQLITE_ROW) return SqlError(db_, "read epoch");
    uint64_t stored = std::stoull(get.ColumnBytes(0));
    // A routing change publishes a new table under a new number: an equal epoch
    // would be a second table under one number (a second writer on this file).
    if (*write.epoch <= stored) {
      return absl::FailedPreconditionError(absl::StrCat(
          "epoch must be strictly newer than the stored one: ", stored, " -> ", *write.epoch));
    }
    Stmt set(db_, "UPDATE meta SET value = ? WHERE key = 'epoch'");
    set.BindText(1, std::to_string(*write.epoch));
    if (!set.ok() || sqlite3_step(set.get()) != SQLITE_DONE) return SqlError(db_, "write epoch");
  }
  Stmt put(db_, "INSERT OR REPLACE INTO objects (kind, id, value) VALUES (?, ?, ?)");
  Stmt del(db_, "DELETE FROM objects WHERE kind = ? AND id = ?");
  if (!put.ok() || !del.ok()) return SqlError(db_, "prepare");
  for (const auto& p : write.puts) {
    Stmt& st = p.value.has_value() ? put : del;
    sqlite3_reset(st.get());
    sqlite3_clear_bindings(st.get());
    st.BindText(1, p.kind);
    st.BindText(2, p.id);
    if (p.value.has_value()) st.BindBlob(3, *p.value);
    if (sqlite3_step(st.get()) != SQLITE_DONE) return SqlError(db_, "write object");
  }
  Stmt ev(db_, "INSERT INTO events (plan_id, value) VALUES (?, ?)");
  if (!ev.ok()) return SqlError(db_, "prepare event");
  for (const auto& e : write.events) {
    sqlite3_reset(ev.get());
    ev.BindInt(1, static_cast<int64_t>(e.plan_id));
    ev.BindBlob(2, e.value);
    if (sqlite3_step(ev.get()) != SQLITE_DONE) return SqlError(db_, "write event");
  }
  if (!write.audit.empty()) {
    Stmt au(db_, "INSERT INTO audit (value) VALUES (?)");
    if (!au.ok()) return SqlError(db_, "prepare audit");
    for (const std::string& a : write.audit) {
      sqlite3_reset(au.get());
      au.BindBlob(1, a);
      if (sqlite3_step(au.get()) != SQLITE_DONE) return SqlError(db_, "write audit");
    }
  }
  return absl::OkStatus();
}

absl::Status SqliteStateStore::Commit(const StateWrite& write) {
  if (write.empty()) return absl::OkStatus();
  absl::MutexLock l(&mu_);
  MIROIR_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status s = CommitLocked(write);
  if (!s.ok()) {
    Exec("ROLLBACK").IgnoreError();
    return s;
  }
  s = Exec("COMMIT");
  if (!s.ok()) Exec("ROLLBACK").IgnoreError();
  return s;
}

absl::StatusOr<std::vector<std::string>> SqliteStateStore::PlanEvents(uint64_t plan_id) {
  absl::MutexLock l(&mu_);
  Stmt st(db_, plan_id == 0 ? "SELECT value FROM events ORDER BY seq"
                            : "SELECT value FROM events WHERE plan_id = ? ORDER BY seq");
  if (!st.ok()) return SqlError(db_, "read events");
  if (plan_id != 0) st.BindInt(1, static_cast<int64_t>(plan_id));
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) out.push_back(st.ColumnBytes(0));
  if (rc != SQLITE_DONE) return SqlError(db_, "read events");
  return out;
}

absl::StatusOr<std::vector<std::string>> SqliteStateStore::RecentAudit(int limit) {
  absl::MutexLock l(&mu_);
  Stmt st(db_, "SELECT value FROM audit ORDER BY seq DESC LIMIT ?");
  if (!st.ok()) return SqlError(db_, "read audit");
  st.BindInt(1, limit);
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) out.push_back(st.ColumnBytes(0));
  if (rc != SQLITE_DONE) return SqlError(db_, "read audit");
  return out;
}

}  // namespace miroir::coordinator

namespace miroir::coordinator {

absl::Status SqliteStateStore::BackupTo(const std::string& path) {
  if (std::filesystem::exists(path)) {
    return absl::FailedPreconditionError(absl::StrCat("backup: ", path, " already exists"));
  }
  sqlite3* dest = nullptr;
  if (sqlite3_open_v2(path.c_str(), &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string msg = dest ? sqlite3_errmsg(dest) : "out of memory";
    sqlite3_close(dest);
    std::filesystem::remove(path);
    return absl::FailedPreconditionError(absl::StrCat("backup: cannot create ", path, ": ", msg));
  }
  absl::Status result;
  {
    absl::MutexLock l(&mu_);
    sqlite3_backup* b = sqlite3_backup_init(dest, "main", db_, "main");
    if (b == nullptr) {
      result = SqlError(dest, "backup init");
    } else {
      // -1: every page in one step, so the copy is one consistent snapshot.
      const int rc = sqlite3_backup_step(b, -1);
      sqlite3_backup_finish(b);
      if (rc != SQLITE_DONE) result = SqlError(dest, "backup step");
    }
  }
  // The copy is a rollback-journal file on its own (no -wal beside it).
  if (result.ok()) {
    char* err = nullptr;
    if (sqlite3_exec(dest, "PRAGMA journal_mode=DELETE", nullptr, nullptr, &err) != SQLITE_OK) {
      result = absl::InternalError(absl::StrCat("backup: ", err ? err : "journal mode"));
      sqlite3_free(err);
    }
  }
  sqlite3_close(dest);
  if (!result.ok()) {
    std::filesystem::remove(path);
    return result;
  }
  // Durable before it is reported done.
  if (int fd = ::open(path.c_str(), O_RDONLY); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return absl::OkStatus();
}

}  // namespace miroir::coordinator
