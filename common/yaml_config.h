// YAML config loading with errors that name file, line and key. Every config
// error is INVALID_ARGUMENT with the message "FILE:LINE: KEY: what is wrong";
// programs print it on one line and exit 2.
#ifndef MIROIR_COMMON_YAML_CONFIG_H_
#define MIROIR_COMMON_YAML_CONFIG_H_

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace miroir {

// Reads and parses a YAML document. `source` names it in errors (a file path).
// A syntax error is reported with its line.
absl::StatusOr<YAML::Node> LoadYamlFile(const std::string& path);
absl::StatusOr<YAML::Node> ParseYaml(const std::string& text, const std::string& source);

// Error for `node` (its line, 1-based) at dotted `key`.
absl::Status YamlError(const std::string& source, const YAML::Node& node, const std::string& key,
                       const std::string& what);

// Typed readers of map member `name` of `map` at dotted path `prefix`; a missing
// member leaves *out unchanged (the default). Wrong type -> YamlError.
class YamlReader {
 public:
  explicit YamlReader(std::string source) : source_(std::move(source)) {}
  absl::Status Bool(const YAML::Node& map, const std::string& prefix, const char* name, bool* out);
  absl::Status Uint(const YAML::Node& map, const std::string& prefix, const char* name,
                    uint64_t* out);
  absl::Status String(const YAML::Node& map, const std::string& prefix, const char* name,
                      std::string* out);
  absl::Status Duration(const YAML::Node& map, const std::string& prefix, const char* name,
                        absl::Duration* out);
  absl::Status StringList(const YAML::Node& map, const std::string& prefix, const char* name,
                          std::vector<std::string>* out);
  // Refuses members of `map` not in `known` ("unknown key").
  absl::Status OnlyKeys(const YAML::Node& map, const std::string& prefix,
                        const std::set<std::string>& known);
  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

}  // namespace miroir

#endif  // MIROIR_COMMON_YAML_CONFIG_H_
