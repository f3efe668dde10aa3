// Pure anti-entropy decisions: buckets, bucketed digests, per-key repair.
#include "worker/tasks/ae_logic.h"

#include <gtest/gtest.h>

#include <set>

#include "common/digest.h"

namespace miroir {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

StoredDoc Doc(const std::string& pk, uint64_t hlc, const std::string& body, int64_t exp = 0) {
  StoredDoc d;
  d.pk = pk;
  d.version = Version{hlc, 7};
  d.body = body;
  d.expires_at_ms = exp;
  return d;
}

StoredDoc Tomb(const std::string& pk, uint64_t hlc) {
  StoredDoc d;
  d.pk = pk;
  d.version = Version{hlc, 7};
  d.tombstone = true;
  return d;
}

TEST(AeLogic, BucketIsStableAndSpreadsKeysOfOneShard) {
  std::set<uint32_t> used;
  for (int i = 0; i < 2000; ++i) {
    const std::string pk = "k" + std::to_string(i);
    EXPECT_EQ(AeBucket(pk, 64), AeBucket(pk, 64));
    used.insert(AeBucket(pk, 64));
  }
  EXPECT_EQ(used.size(), 64u);
}

TEST(AeLogic, EqualReplicasHaveNoDivergentBucketsInAnyOrder) {
  BucketDigests a(16), b(16);
  a.Add(Doc("x", 1, "{}"), kNow);
  a.Add(Tomb("y", 2), kNow);
  b.Add(Tomb("y", 2), kNow);
  b.Add(Doc("x", 1, "{}"), kNow);
  EXPECT_EQ(a.Root(), b.Root());
  EXPECT_TRUE(DivergentBuckets({a, b}).empty());
}

TEST(AeLogic, OnlyTheBucketOfTheDifferingKeyDiverges) {
  BucketDigests a(16), b(16);
  for (int i = 0; i < 100; ++i) {
    a.Add(Doc("k" + std::to_string(i), 1, "{}"), kNow);
    b.Add(Doc("k" + std::to_string(i), 1, i == 42 ? "{\"a\":1}" : "{}"), kNow);
  }
  EXPECT_NE(a.Root(), b.Root());
  EXPECT_EQ(DivergentBuckets({a, b}), std::vector<uint32_t>{AeBucket("k42", 16)});
}

TEST(AeLogic, AnExpiredDocumentMarksItsBucketEvenWhenReplicasAgree) {
  BucketDigests a(16), b(16);
  a.Add(Doc("x", 1, "{}", kNow - 1), kNow);
  b.Add(Doc("x", 1, "{}", kNow - 1), kNow);
  EXPECT_EQ(DivergentBuckets({a, b}), std::vector<uint32_t>{AeBucket("x", 16)});
  BucketDigests c(16), d(16);
  c.Add(Doc("x", 1, "{}", kNow + 1000), kNow);
  d.Add(Doc("x", 1, "{}", kNow + 1000), kNow);
  EXPECT_TRUE(DivergentBuckets({c, d}).empty());
}

TEST(AeLogic, MissingAndStaleCopiesGetTheHighestVersion) {
  auto d = DecideRepair({Doc("x", 5, "{\"v\":5}"), std::nullopt, Doc("x", 3, "{\"v\":3}")}, kNow);
  ASSERT_TRUE(d.truth);
  EXPECT_EQ(d.truth->version.hlc, 5u);
  EXPECT_EQ(d.truth->body, "{\"v\":5}");
  EXPECT_EQ(d.write, (std::vector<bool>{false, true, true}));
  EXPECT_TRUE(d.mismatch);
  EXPECT_FALSE(d.conflict);
  EXPECT_FALSE(d.overwrite_same_version);
}

TEST(AeLogic, AgreeingCopiesNeedNothing) {
  auto d = DecideRepair({Doc("x", 5, "{}"), Doc("x", 5, "{}")}, kNow);
  EXPECT_FALSE(d.mismatch);
  EXPECT_EQ(d.write, (std::vector<bool>{false, false}));
}

TEST(AeLogic, TombstoneBeatsOlderPutButNotNewerPut) {
  auto d = DecideRepair({Tomb("x", 6), Doc("x", 5, "{}")}, kNow);
  EXPECT_TRUE(d.truth->tombstone);
  EXPECT_EQ(d.write, (std::vector<bool>{false, true}));
  auto e = DecideRepair({Tomb("x", 4), Doc("x", 5, "{}")}, kNow);
  EXPECT_FALSE(e.truth->tombstone);
  EXPECT_EQ(e.write, (std::vector<bool>{true, false}));
}

TEST(AeLogic, ExpiredDocumentBecomesTombstoneAtItsOwnVersion) {
  auto d = DecideRepair({Doc("x", 5, "{}", kNow - 10), std::nullopt, Tomb("x", 5)}, kNow);
  ASSERT_TRUE(d.truth);
  EXPECT_TRUE(d.truth->tombstone);
  EXPECT_EQ(d.truth->version.hlc, 5u);
  EXPECT_TRUE(d.expired);
  EXPECT_TRUE(d.overwrite_same_version);
  EXPECT_EQ(d.write, (std::vector<bool>{true, true, false}));
}

TEST(AeLogic, ExpiredDocumentNeverWinsOverANewerPut) {
  auto d = DecideRepair({Doc("x", 5, "{}", kNow - 10), Doc("x", 9, "{\"n\":1}")}, kNow);
  EXPECT_FALSE(d.truth->tombstone);
  EXPECT_EQ(d.truth->version.hlc, 9u);
  EXPECT_FALSE(d.expired);
}

TEST(AeLogic, SameVersionDifferentBodyMajorityWins) {
  auto d = DecideRepair(
      {Doc("x", 5, "{\"a\":1}"), Doc("x", 5, "{\"a\":2}"), Doc("x", 5, "{\"a\":1}")}, kNow);
  EXPECT_TRUE(d.conflict);
  EXPECT_FALSE(d.unresolved);
  EXPECT_EQ(d.truth->body, "{\"a\":1}");
  EXPECT_EQ(d.write, (std::vector<bool>{false, true, false}));
  EXPECT_TRUE(d.overwrite_same_version);
}

TEST(AeLogic, SameVersionDifferentBodyWithoutMajorityIsUnresolvedAndDeterministic) {
  const StoredDoc a = Doc("x", 5, "{\"a\":1}");
  const StoredDoc b = Doc("x", 5, "{\"a\":2}");
  auto d1 = DecideRepair({a, b}, kNow);
  auto d2 = DecideRepair({b, a}, kNow);
  EXPECT_TRUE(d1.conflict);
  EXPECT_TRUE(d1.unresolved);
  EXPECT_EQ(d1.truth->body, d2.truth->body);
  EXPECT_EQ(d1.truth->body, BodyHash(a.body) < BodyHash(b.body) ? a.body : b.body);
  // A copy missing on a third replica does not make one body a majority.
  auto d3 = DecideRepair({a, b, std::nullopt}, kNow);
  EXPECT_TRUE(d3.unresolved);
}

TEST(AeLogic, NoCopyMeansNothingToDo) {
  auto d = DecideRepair({std::nullopt, std::nullopt}, kNow);
  EXPECT_FALSE(d.truth);
  EXPECT_FALSE(d.mismatch);
}

}  // namespace
}  // namespace miroir
