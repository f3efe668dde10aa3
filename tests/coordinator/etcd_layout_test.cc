#include "coordinator/etcd_layout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "coordinator/state_store.h"

namespace miroir::coordinator {
namespace {

using ::testing::HasSubstr;

// Every kind's buckets together fit kMaxBucketKeys, so a commit touching every
// object is still one transaction inside etcd's --max-txn-ops. A kind given more
// buckets without this in mind fails here.
TEST(EtcdLayout, AllBucketsOfEveryKindFitOneTransaction) {
  int total = 0;
  for (const char* kind : {kKindNode, kKindGroup, kKindIndex, kKindGeneration, kKindShardRoute,
                           kKindAlias, kKindPlan, kKindMove, kKindTask, kKindMeta, kKindAePass,
                           kKindAeRun, kKindReshard, kKindWorkerSession}) {
    total += EtcdLayout::BucketsOf(kind);
  }
  EXPECT_LE(total, kMaxBucketKeys);
  // Buckets and compares, plus the epoch, the event batch and the leader compare.
  EXPECT_LE(total + 3, kEtcdMaxTxnOps);
}

TEST(EtcdLayout, KeysAreStableAndSpreadOverTheKindsBuckets) {
  EtcdLayout l("/miroir");
  EXPECT_EQ(l.LeaderKey(), "/miroir/leader");
  EXPECT_EQ(l.EpochKey(), "/miroir/epoch");
  EXPECT_EQ(l.BucketKey(kKindMove, "42"), l.BucketKey(kKindMove, "42"));
  std::set<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.insert(l.BucketKey(kKindMove, std::to_string(i)));
  EXPECT_EQ(keys.size(), static_cast<size_t>(EtcdLayout::BucketsOf(kKindMove)));
  for (const auto& k : keys) {
    auto kind = l.BucketKind(k);
    ASSERT_TRUE(kind.ok());
    EXPECT_EQ(*kind, kKindMove);
  }
  EXPECT_FALSE(l.BucketKind("/other/obj/move/001").ok());
}

TEST(EtcdLayout, EventKeysSortBySequence) {
  EtcdLayout l("/p");
  EXPECT_LT(l.EventKey(9), l.EventKey(10));
  auto seq = l.EventSeq(l.EventKey(12345));
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 12345u);
  EXPECT_FALSE(l.EventSeq("/p/obj/x").ok());
}

TEST(EtcdLayout, RangeEndCoversExactlyThePrefix) {
  EXPECT_EQ(EtcdLayout::RangeEnd("/a/"), "/a0");
  EXPECT_EQ(EtcdLayout::RangeEnd(std::string("a\xff", 2)), "b");
}

TEST(EtcdLayout, BucketRoundTrip) {
  BucketObjects in{{"a", "1"}, {"b", std::string("\0x", 2)}};
  auto out = DecodeBucket(EncodeBucket(in));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, in);
}

TEST(EtcdLayout, ATransactionPastEtcdsLimitsIsRefusedNamingTheLimit) {
  EXPECT_TRUE(CheckTxnFits(100, 1000000).ok());
  auto ops = CheckTxnFits(kEtcdMaxTxnOps + 1, 10);
  EXPECT_EQ(ops.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ops.message()), HasSubstr("--max-txn-ops"));
  auto bytes = CheckTxnFits(10, kEtcdMaxRequestBytes);
  EXPECT_EQ(bytes.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(bytes.message()), HasSubstr("--max-request-bytes"));
}

}  // namespace
}  // namespace miroir::coordinator
