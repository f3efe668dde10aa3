#include "common/digest.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

TEST(ShardDigest, OrderIndependentAndSensitiveToEveryField) {
  ShardDigest a, b;
  a.Add("x", 1, 2, false, "{}");
  a.Add("y", 3, 4, true, "");
  b.Add("y", 3, 4, true, "");
  b.Add("x", 1, 2, false, "{}");
  EXPECT_EQ(a.Hex(), b.Hex());
  EXPECT_EQ(a.documents(), 1u);
  EXPECT_EQ(a.tombstones(), 1u);
  auto one = [](std::string pk, uint64_t hlc, uint64_t w, bool t, std::string body) {
    ShardDigest d;
    d.Add(pk, hlc, w, t, body);
    return d.Hex();
  };
  const std::string base = one("x", 1, 2, false, "{}");
  EXPECT_NE(base, one("z", 1, 2, false, "{}"));
  EXPECT_NE(base, one("x", 9, 2, false, "{}"));
  EXPECT_NE(base, one("x", 1, 9, false, "{}"));
  EXPECT_NE(base, one("x", 1, 2, true, ""));
  EXPECT_NE(base, one("x", 1, 2, false, "{\"a\":1}"));
  EXPECT_EQ(ShardDigest().Hex(), "0000000000000000");
}

TEST(ShardDigest, DuplicateEntriesDoNotCancelOut) {
  ShardDigest a;
  a.Add("x", 1, 2, false, "{}");
  a.Add("x", 1, 2, false, "{}");
  EXPECT_NE(a.Hex(), ShardDigest().Hex());
}

}  // namespace
}  // namespace miroir
