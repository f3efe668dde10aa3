// DataDirLock: the exclusive hold of one miroir-coordinator on its data
// directory (DESIGN §9). Two coordinators committing to one SQLite file would
// each publish their own table under the same epoch numbers, so the second
// process refuses to start instead. The lock is an flock(2) on `<dir>/LOCK`,
// which also records the holder's pid for the refusal message; the kernel drops
// it when the holder exits, however it exits (a SIGKILLed coordinator leaves no
// stale lock behind), and keeps it while the holder is stopped (a SIGSTOPped
// coordinator still holds its directory).
//
// Thread-compatible: created once by main() and held for the process's life.
#ifndef MIROIR_COORDINATOR_DATA_DIR_LOCK_H_
#define MIROIR_COORDINATOR_DATA_DIR_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace miroir::coordinator {

class DataDirLock {
 public:
  // Takes the lock on `dir` (which must exist) without waiting. Returns
  // FAILED_PRECONDITION naming the holder's pid when another process holds it,
  // INTERNAL when the lock file cannot be opened or written.
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir);

  // Releases the lock (closes the file; the file itself stays).
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  DataDirLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_DATA_DIR_LOCK_H_
