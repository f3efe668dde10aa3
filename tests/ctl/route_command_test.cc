// miroir-ctl route: the real binary, offline.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/routing.h"
#include "tests/ctl/ctl_runner.h"

namespace miroir {
namespace {

using miroir::testing::RunCtl;

TEST(CtlRoute, ReproducesThePublicFixtures) {
  struct Fixture {
    const char* key;
    const char* shards;
    const char* shard;
  };
  for (const Fixture& f : {Fixture{"user:12345", "64", "15"}, Fixture{"product:abc", "64", "24"},
                           Fixture{"order:99999", "64", "4"}, Fixture{"test", "16", "10"},
                           Fixture{"hello", "32", "6"}}) {
    auto r = RunCtl({"route", "--shards", f.shards, f.key, "--output", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, std::string("[{\"key\":\"") + f.key + "\",\"shard\":" + f.shard + "}]\n");
    EXPECT_EQ(r.err, "");
  }
}

TEST(CtlRoute, TableOutput) {
  auto r = RunCtl({"route", "--shards", "64", "user:12345", "order:99999"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "KEY          SHARD\n"
            "user:12345   15\n"
            "order:99999  4\n");
  auto g = RunCtl({"route", "--shards", "64", "--groups", "g0:n0,n1;g1:m0", "user:12345"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  const std::string owner = Owners(15, {"n0", "n1"}, 1)[0];
  EXPECT_EQ(g.out, "KEY         SHARD  g0  g1\nuser:12345  15     " + owner + "  m0\n");
}

TEST(CtlRoute, JsonShapeWithGroupsListsOwnersInRankOrder) {
  auto r = RunCtl({"--output", "json", "route", "--shards", "64", "--groups",
                   "g0:n0,n1,n2,n3;g1:m0,m1,m2", "--rf", "2", "user:12345", "hello"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out.back(), '\n');
  ASSERT_EQ(r.out.find('\n'), r.out.size() - 1) << "one line of JSON";
  auto j = nlohmann::ordered_json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  std::vector<GroupNodes> groups = {{"g0", {"n0", "n1", "n2", "n3"}}, {"g1", {"m0", "m1", "m2"}}};
  const std::vector<std::string> keys = {"user:12345", "hello"};
  for (size_t i = 0; i < 2; ++i) {
    const auto& e = j[i];
    // Exactly these keys, in this order.
    std::vector<std::string> names;
    for (auto it = e.begin(); it != e.end(); ++it) names.push_back(it.key());
    EXPECT_EQ(names, (std::vector<std::string>{"key", "shard", "owners"}));
    EXPECT_EQ(e["key"], keys[i]);
    const uint32_t shard = ShardForKey(keys[i], 64);
    EXPECT_EQ(e["shard"], shard);
    std::vector<std::string> group_names;
    for (auto it = e["owners"].begin(); it != e["owners"].end(); ++it) {
      group_names.push_back(it.key());
    }
    EXPECT_EQ(group_names, (std::vector<std::string>{"g0", "g1"}));
    EXPECT_EQ(e["owners"]["g0"].get<std::vector<std::string>>(), Owners(shard, groups[0].nodes, 2));
    EXPECT_EQ(e["owners"]["g1"].get<std::vector<std::string>>(), Owners(shard, groups[1].nodes, 2));
  }
}

TEST(CtlRoute, RfDefaultsToOne) {
  auto r = RunCtl({"route", "--shards", "8", "--groups", "g0:a,b,c", "k", "--output", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j[0]["owners"]["g0"].size(), 1u);
}

struct BadInput {
  std::vector<std::string> args;
  std::string message;  // what the one error line must contain
};

TEST(CtlRoute, BadInputIsOneLineAndExitTwo) {
  const std::vector<BadInput> cases = {
      {{"route", "--shards", "0", "k"}, "--shards must be between 1 and 65536, got 0"},
      {{"route", "--shards", "70000", "k"}, "--shards must be between 1 and 65536"},
      {{"route", "--shards", "-3", "k"}, "--shards"},
      {{"route", "--shards", "abc", "k"}, "--shards"},
      {{"route", "k"}, "--shards is required"},
      {{"route", "--shards", "8"}, "KEY is required"},
      {{"route", "--shards", "8", ""}, "KEY 1 is empty"},
      {{"route", "--shards", "8", "a", ""}, "KEY 2 is empty"},
      {{"route", "--shards", "8", std::string(512, 'x')}, "KEY 1 is 512 bytes"},
      {{"route", "--shards", "8", "--groups", "g0:a", "--rf", "2", "k"},
       "--rf 2 is larger than group 'g0' (1 nodes)"},
      {{"route", "--shards", "8", "--groups", "g0:a,b;g1:c", "--rf", "2", "k"},
       "--rf 2 is larger than group 'g1'"},
      {{"route", "--shards", "8", "--rf", "0", "k"}, "--rf must be at least 1"},
      {{"route", "--shards", "8", "--groups", "g0:a,b;g1:b", "k"}, "duplicate node id 'b'"},
      {{"route", "--shards", "8", "--groups", "g0:a,a", "k"}, "duplicate node id 'a'"},
      {{"route", "--shards", "8", "--groups", "g0:a;g0:b", "k"}, "duplicate group 'g0'"},
      {{"route", "--shards", "8", "--groups", "g0", "k"}, "'g0' has no ':'"},
      {{"route", "--shards", "8", "--groups", ":a", "k"}, "empty group id"},
      {{"route", "--shards", "8", "--groups", "g0:", "k"}, "group 'g0' has an empty node id"},
      {{"route", "--shards", "8", "--groups", "g0:a,,b", "k"}, "empty node id"},
      {{"route", "--shards", "8", "--groups", "g0:a;;g1:b", "k"}, "empty group entry"},
      {{"route", "--shards", "8", "--groups", "", "k"}, "--groups"},
      {{"route", "--shards", "8", "--bogus", "k"}, "--bogus"},
      {{"route", "--shards", "8", "k", "--output", "yaml"}, "--output"},
  };
  for (const auto& c : cases) {
    auto r = RunCtl(c.args);
    std::string joined;
    for (const auto& a : c.args) joined += "[" + a.substr(0, 20) + "]";
    EXPECT_EQ(r.exit_code, 2) << joined << " stderr: " << r.err;
    EXPECT_EQ(r.ErrLines(), 1) << joined << " stderr: " << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << joined << " stderr: " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << joined << " stderr: " << r.err;
    EXPECT_EQ(r.out, "") << joined;
  }
}

}  // namespace
}  // namespace miroir
