// TempDir: a fresh directory for one test's files (process logs, redis data,
// SQLite, configs). Removed in the destructor when the test passed; kept (and its
// path printed) when the current test failed or MIROIR_KEEP_TEMP is set, so the
// logs of a failed run can be read. Not thread-safe; owned by the test body.
#ifndef MIROIR_TESTS_HARNESS_TEMP_DIR_H_
#define MIROIR_TESTS_HARNESS_TEMP_DIR_H_

#include <string>

namespace miroir::testing {

class TempDir {
 public:
  // Creates $TEST_TMPDIR/miroir-<prefix>-XXXXXX (or under /tmp). Aborts the test
  // binary if the directory cannot be created (nothing can work without it).
  explicit TempDir(const std::string& prefix = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name (not created).
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Creates path()/name (and parents) and returns it.
  std::string Subdir(const std::string& name) const;
  // Keep the directory even when the test passes.
  void Keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

// Reads a whole file ("" when it cannot be read).
std::string ReadFileOrEmpty(const std::string& path);
// Writes `text` to `path` (truncates). Returns false on error.
bool WriteFile(const std::string& path, const std::string& text);
// Removes `path` recursively (no error when absent).
void RemoveAll(const std::string& path);

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_TEMP_DIR_H_
