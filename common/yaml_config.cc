#include "common/yaml_config.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/duration.h"

namespace miroir {
namespace {

std::string Dotted(const std::string& prefix, const char* name) {
  return prefix.empty() ? std::string(name) : absl::StrCat(prefix, ".", name);
}

// "FILE:LINE: " when the mark is known (yaml-cpp lines are 0-based), else "FILE: ".
std::string Where(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return absl::StrCat(source, ": ");
  return absl::StrCat(source, ":", mark.line + 1, ": ");
}

// Short, one-line rendering of a node for messages.
std::string Show(const YAML::Node& node) {
  if (node.IsScalar()) return absl::StrCat("'", node.Scalar(), "'");
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

}  // namespace

absl::StatusOr<YAML::Node> LoadYamlFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
  }
  std::stringstream buf;
  buf << f.rdbuf();
  if (f.bad()) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read"));
  return ParseYaml(buf.str(), path);
}

absl::StatusOr<YAML::Node> ParseYaml(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(Where(source, e.mark), "syntax error: ", e.msg));
  }
}

absl::Status YamlError(const std::string& source, const YAML::Node& node, const std::string& key,
                       const std::string& what) {
  YAML::Mark mark = YAML::Mark::null_mark();
  if (node.IsDefined()) mark = node.Mark();
  return absl::InvalidArgumentError(absl::StrCat(Where(source, mark), key, ": ", what));
}

namespace {

// Member `name` of `map`, or an undefined node when absent or null. Copies are
// returned (never assigned): yaml-cpp's Node::operator= rewrites the target node.
absl::StatusOr<YAML::Node> Member(const std::string& source, const YAML::Node& map,
                                  const std::string& prefix, const char* name) {
  if (!map.IsDefined() || map.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
  if (!map.IsMap()) {
    return YamlError(source, map, prefix.empty() ? "(top level)" : prefix,
                     absl::StrCat("expected a mapping, got ", Show(map)));
  }
  const YAML::Node m = map[name];
  if (!m.IsDefined() || m.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
  return m;
}

}  // namespace

absl::Status YamlReader::Bool(const YAML::Node& map, const std::string& prefix, const char* name,
                              bool* out) {
  auto member = Member(source_, map, prefix, name);
  if (!member.ok()) return member.status();
  const YAML::Node n = *member;
  if (!n.IsDefined()) return absl::OkStatus();
  bool v = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
    return YamlError(source_, n, Dotted(prefix, name),
                     absl::StrCat("expected true or false, got ", Show(n)));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status YamlReader::Uint(const YAML::Node& map, const std::string& prefix, const char* name,
                              uint64_t* out) {
  auto member = Member(source_, map, prefix, name);
  if (!member.ok()) return member.status();
  const YAML::Node n = *member;
  if (!n.IsDefined()) return absl::OkStatus();
  uint64_t v = 0;
  bool ok = n.IsScalar() && !n.Scalar().empty();
  if (ok) {
    for (char c : n.Scalar()) ok = ok && std::isdigit(static_cast<unsigned char>(c));
  }
  if (!ok || !absl::SimpleAtoi(n.Scalar(), &v)) {
    return YamlError(source_, n, Dotted(prefix, name),
                     absl::StrCat("expected a non-negative integer, got ", Show(n)));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status YamlReader::String(const YAML::Node& map, const std::string& prefix, const char* name,
                                std::string* out) {
  auto member = Member(source_, map, prefix, name);
  if (!member.ok()) return member.status();
  const YAML::Node n = *member;
  if (!n.IsDefined()) return absl::OkStatus();
  if (!n.IsScalar()) {
    return YamlError(source_, n, Dotted(prefix, name),
                     absl::StrCat("expected a string, got ", Show(n)));
  }
  *out = n.Scalar();
  return absl::OkStatus();
}

absl::Status YamlReader::Duration(const YAML::Node& map, const std::string& prefix,
                                  const char* name, absl::Duration* out) {
  auto member = Member(source_, map, prefix, name);
  if (!member.ok()) return member.status();
  const YAML::Node n = *member;
  if (!n.IsDefined()) return absl::OkStatus();
  if (!n.IsScalar()) {
    return YamlError(source_, n, Dotted(prefix, name),
                     absl::StrCat("expected a duration like 500ms, 2s or 1h30m, got ", Show(n)));
  }
  auto d = ParseDuration(n.Scalar());
  if (!d.ok())
    return YamlError(source_, n, Dotted(prefix, name), std::string(d.status().message()));
  *out = *d;
  return absl::OkStatus();
}

absl::Status YamlReader::StringList(const YAML::Node& map, const std::string& prefix,
                                    const char* name, std::vector<std::string>* out) {
  auto member = Member(source_, map, prefix, name);
  if (!member.ok()) return member.status();
  const YAML::Node n = *member;
  if (!n.IsDefined()) return absl::OkStatus();
  if (!n.IsSequence()) {
    return YamlError(source_, n, Dotted(prefix, name),
                     absl::StrCat("expected a list of strings, got ", Show(n)));
  }
  std::vector<std::string> v;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    if (!item.IsScalar()) {
      return YamlError(source_, item, absl::StrCat(Dotted(prefix, name), "[", i, "]"),
                       absl::StrCat("expected a string, got ", Show(item)));
    }
    v.push_back(item.Scalar());
  }
  *out = std::move(v);
  return absl::OkStatus();
}

absl::Status YamlReader::OnlyKeys(const YAML::Node& map, const std::string& prefix,
                                  const std::set<std::string>& known) {
  if (!map.IsDefined() || map.IsNull()) return absl::OkStatus();
  if (!map.IsMap()) {
    return YamlError(source_, map, prefix.empty() ? "(top level)" : prefix,
                     absl::StrCat("expected a mapping, got ", Show(map)));
  }
  std::set<std::string> seen;
  for (const auto& kv : map) {
    const YAML::Node& k = kv.first;
    if (!k.IsScalar()) {
      return YamlError(source_, k, prefix.empty() ? "(top level)" : prefix,
                       "keys must be plain strings");
    }
    const std::string key = prefix.empty() ? k.Scalar() : absl::StrCat(prefix, ".", k.Scalar());
    if (!seen.insert(k.Scalar()).second) return YamlError(source_, k, key, "duplicate key");
    if (known.count(k.Scalar()) == 0) {
      std::string expected;
      for (const auto& name : known) absl::StrAppend(&expected, expected.empty() ? "" : ", ", name);
      return YamlError(source_, k, key,
                       absl::StrCat("unknown key (expected one of: ", expected, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace miroir
