#include "common/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace miroir {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(SetupLogging, JsonLinesAreValidJsonWhateverTheMessage) {
  ASSERT_TRUE(SetupLogging("miroir-\"test\"", "json", "info").ok());
  const std::string nasty = "quote \" backslash \\ newline \n tab \t bell \x07 utf8 é {\"x\":1}";
  testing::internal::CaptureStderr();
  spdlog::info("{}", nasty);
  spdlog::warn("100% done");
  spdlog::debug("not shown at info");
  const std::string out = testing::internal::GetCapturedStderr();
  auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 2u) << out;
  auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["msg"], nasty);
  EXPECT_EQ(first["level"], "info");
  EXPECT_EQ(first["program"], "miroir-\"test\"");
  EXPECT_EQ(first["ts"].get<std::string>().back(), 'Z');
  auto second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["msg"], "100% done");
  EXPECT_EQ(second["level"], "warning");
}

TEST(SetupLogging, TextFormatAndRepeatedSetup) {
  ASSERT_TRUE(SetupLogging("miroir-test", "text", "debug").ok());
  ASSERT_TRUE(SetupLogging("miroir-test", "text", "debug").ok());  // twice is fine
  testing::internal::CaptureStderr();
  spdlog::debug("hello {}", 42);
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("miroir-test: hello 42\n"), std::string::npos) << out;
}

TEST(SetupLogging, RefusesUnknownFormatAndLevel) {
  auto f = SetupLogging("miroir-test", "xml");
  EXPECT_EQ(f.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(f.message().find("--log-format"), std::string::npos);
  auto l = SetupLogging("miroir-test", "text", "loud");
  EXPECT_EQ(l.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(l.message().find("--log-level"), std::string::npos);
}

}  // namespace
}  // namespace miroir
