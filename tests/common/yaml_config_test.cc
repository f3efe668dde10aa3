#include "common/yaml_config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace miroir {
namespace {

// Reads the keys of a small coordinator-like config the way programs do.
struct Sample {
  bool enabled = true;
  uint64_t threshold = 1000;
  absl::Duration drain = absl::Milliseconds(500);
  std::string name = "default";
  std::vector<std::string> windows;
};

absl::Status ReadSample(const std::string& text, Sample* out) {
  auto root = ParseYaml(text, "c.yaml");
  if (!root.ok()) return root.status();
  YamlReader r("c.yaml");
  if (auto s = r.OnlyKeys(*root, "", {"name", "migration", "anti_entropy"}); !s.ok()) return s;
  if (auto s = r.String(*root, "", "name", &out->name); !s.ok()) return s;
  const YAML::Node migration = (*root)["migration"];
  if (auto s = r.OnlyKeys(migration, "migration",
                          {"catch_up_threshold", "drain_timeout", "allowed_windows"});
      !s.ok()) {
    return s;
  }
  if (auto s = r.Uint(migration, "migration", "catch_up_threshold", &out->threshold); !s.ok()) {
    return s;
  }
  if (auto s = r.Duration(migration, "migration", "drain_timeout", &out->drain); !s.ok()) return s;
  if (auto s = r.StringList(migration, "migration", "allowed_windows", &out->windows); !s.ok()) {
    return s;
  }
  const YAML::Node ae = (*root)["anti_entropy"];
  return r.Bool(ae, "anti_entropy", "enabled", &out->enabled);
}

std::string ErrorOf(const std::string& text) {
  Sample s;
  absl::Status st = ReadSample(text, &s);
  EXPECT_FALSE(st.ok()) << text;
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  return std::string(st.message());
}

TEST(YamlReader, ReadsValuesAndKeepsDefaultsForMissingKeys) {
  Sample s;
  ASSERT_TRUE(ReadSample("migration:\n"
                         "  catch_up_threshold: 5\n"
                         "  allowed_windows: [off-peak, \"01:00-02:00\"]\n",
                         &s)
                  .ok());
  EXPECT_EQ(s.threshold, 5u);
  EXPECT_EQ(s.drain, absl::Milliseconds(500));
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.name, "default");
  EXPECT_EQ(s.windows, (std::vector<std::string>{"off-peak", "01:00-02:00"}));

  Sample t;
  ASSERT_TRUE(ReadSample("name: x\nmigration:\n  drain_timeout: 2s\nanti_entropy:\n"
                         "  enabled: false\n",
                         &t)
                  .ok());
  EXPECT_EQ(t.name, "x");
  EXPECT_EQ(t.drain, absl::Seconds(2));
  EXPECT_FALSE(t.enabled);

  Sample empty;
  EXPECT_TRUE(ReadSample("", &empty).ok());
  EXPECT_TRUE(ReadSample("migration:\n", &empty).ok());  // null section = defaults
}

TEST(YamlReader, EachMalformedCaseNamesFileLineAndKey) {
  EXPECT_EQ(ErrorOf("name: x\nanti_entropy:\n  enabled: maybe\n"),
            "c.yaml:3: anti_entropy.enabled: expected true or false, got 'maybe'");
  EXPECT_EQ(ErrorOf("migration:\n  catch_up_threshold: -5\n"),
            "c.yaml:2: migration.catch_up_threshold: expected a non-negative integer, got '-5'");
  EXPECT_EQ(ErrorOf("migration:\n  catch_up_threshold: 1.5\n"),
            "c.yaml:2: migration.catch_up_threshold: expected a non-negative integer, got '1.5'");
  EXPECT_EQ(ErrorOf("migration:\n  catch_up_threshold: 99999999999999999999999\n"),
            "c.yaml:2: migration.catch_up_threshold: expected a non-negative integer, got "
            "'99999999999999999999999'");
  EXPECT_EQ(ErrorOf("\nmigration:\n  drain_timeout: fast\n"),
            "c.yaml:3: migration.drain_timeout: malformed duration 'fast' (expected e.g. 500ms, "
            "2s, 10m, 1h30m, 7d)");
  EXPECT_EQ(ErrorOf("migration:\n  drain_timeout: [1s]\n"),
            "c.yaml:2: migration.drain_timeout: expected a duration like 500ms, 2s or 1h30m, got "
            "a list");
  EXPECT_EQ(ErrorOf("migration:\n  allowed_windows: off-peak\n"),
            "c.yaml:2: migration.allowed_windows: expected a list of strings, got 'off-peak'");
  EXPECT_EQ(ErrorOf("migration:\n  allowed_windows:\n    - a\n    - {x: 1}\n"),
            "c.yaml:4: migration.allowed_windows[1]: expected a string, got a mapping");
  EXPECT_EQ(ErrorOf("name: [a]\n"), "c.yaml:1: name: expected a string, got a list");
  EXPECT_EQ(ErrorOf("name: x\nmigration:\n  catch_up_treshold: 5\n"),
            "c.yaml:3: migration.catch_up_treshold: unknown key (expected one of: "
            "allowed_windows, catch_up_threshold, drain_timeout)");
  EXPECT_EQ(ErrorOf("name: x\nname: y\n"), "c.yaml:2: name: duplicate key");
  EXPECT_EQ(ErrorOf("migration: 5\n"), "c.yaml:1: migration: expected a mapping, got '5'");
  EXPECT_EQ(ErrorOf("- a\n- b\n"), "c.yaml:1: (top level): expected a mapping, got a list");
}

TEST(ParseYaml, SyntaxErrorNamesTheLine) {
  auto r = ParseYaml("a: 1\nb: [1, 2\nc: 3\n", "fleet.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(r.status().message());
  EXPECT_EQ(msg.rfind("fleet.yaml:", 0), 0u) << msg;
  EXPECT_NE(msg.find(": syntax error: "), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;

  auto tab = ParseYaml("a: 1\n\tb: 2\n", "t.yaml");
  ASSERT_FALSE(tab.ok());
  EXPECT_EQ(std::string(tab.status().message()).rfind("t.yaml:2: syntax error", 0), 0u)
      << tab.status();
}

TEST(LoadYamlFile, ReadsAFileAndReportsAMissingOne) {
  const std::string path = ::testing::TempDir() + "/yaml_config_test.yaml";
  {
    std::ofstream f(path);
    f << "migration:\n  catch_up_threshold: nope\n";
  }
  auto root = LoadYamlFile(path);
  ASSERT_TRUE(root.ok()) << root.status();
  YamlReader r(path);
  uint64_t v = 0;
  absl::Status s = r.Uint((*root)["migration"], "migration", "catch_up_threshold", &v);
  EXPECT_EQ(s.message(), path +
                             ":2: migration.catch_up_threshold: expected a non-negative "
                             "integer, got 'nope'");
  std::remove(path.c_str());

  auto missing = LoadYamlFile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(missing.status().message()).rfind(path + ": cannot read", 0), 0u);
}

TEST(YamlError, UsesOneBasedLines) {
  auto root = *ParseYaml("a: 1\nb:\n  c: 2\n", "x.yaml");
  EXPECT_EQ(YamlError("x.yaml", root["b"]["c"], "b.c", "too big").message(),
            "x.yaml:3: b.c: too big");
  EXPECT_EQ(YamlError("x.yaml", root["zzz"], "zzz", "required").message(), "x.yaml: zzz: required");
}

}  // namespace
}  // namespace miroir
