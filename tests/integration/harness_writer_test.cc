// The test writer and its check. EvaluatePromise is pure and tested on hand-made
// node contents (each failure class must be caught); the last tests run the
// writer against a real fleet and check the promise on the nodes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/routing.h"
#include "harness/fleet.h"
#include "harness/temp_dir.h"
#include "harness/test_writer.h"

namespace miroir::testing {
namespace {

using ::testing::HasSubstr;

// Two groups, S=4: shard s is owned by "a<s%2>" in g0 and "b0" in g1.
LiveRouting TwoGroupRouting() {
  LiveRouting r;
  r.index = "products";
  r.generation = 1;
  r.shards = 4;
  r.owners.resize(4);
  for (uint32_t s = 0; s < 4; ++s) {
    r.owners[s]["g0"] = {absl::StrCat("a", s % 2)};
    r.owners[s]["g1"] = {"b0"};
  }
  return r;
}

StoredDoc Doc(const std::string& pk, uint64_t v, uint64_t w, const std::string& body,
              bool tomb = false) {
  StoredDoc d;
  d.pk = pk;
  d.version = Version{v, w};
  d.body = body;
  d.tombstone = tomb;
  return d;
}

class EvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    routing_ = TwoGroupRouting();
    put_.acked = true;
    put_.body = "{\"n\":1}";
    put_.version = 100;
    put_.writer = 7;
    put_.acked_ops = 2;
    del_ = put_;
    del_.deleted = true;
    del_.body.clear();
    del_.version = 200;
    records_["p"] = put_;
    records_["d"] = del_;
    // Correct contents: both owners of each key hold the last op.
    for (const auto& [key, rec] : records_) {
      uint32_t s = ShardForKey(key, 4);
      for (const std::string& node : {absl::StrCat("a", s % 2), std::string("b0")}) {
        contents_[node][s][key] = Doc(key, rec.version, rec.writer, rec.body, /*tomb=*/rec.deleted);
      }
    }
  }
  std::string OwnerA(const std::string& key) { return absl::StrCat("a", ShardForKey(key, 4) % 2); }
  std::string NonOwnerA(const std::string& key) {
    return absl::StrCat("a", 1 - ShardForKey(key, 4) % 2);
  }
  CheckReport Eval() { return EvaluatePromise(records_, routing_, contents_, unreadable_); }

  LiveRouting routing_;
  KeyRecord put_, del_;
  std::map<std::string, KeyRecord> records_;
  std::map<std::string, std::map<uint32_t, ShardContents>> contents_;
  std::set<std::string> unreadable_;
};

TEST_F(EvaluateTest, CorrectContentsPass) {
  CheckReport r = Eval();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.keys_checked, 2u);
  EXPECT_EQ(r.acknowledged_writes, 4u);
}

TEST_F(EvaluateTest, MissingPutOnOneOwnerIsLost) {
  contents_["b0"][ShardForKey("p", 4)].erase("p");
  CheckReport r = Eval();
  EXPECT_EQ(r.lost, 1u);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.Summary(), HasSubstr("key p"));
}

TEST_F(EvaluateTest, OlderVersionIsLost) {
  contents_[OwnerA("p")][ShardForKey("p", 4)]["p"] = Doc("p", 50, 7, "{\"n\":0}");
  EXPECT_EQ(Eval().lost, 1u);
}

TEST_F(EvaluateTest, DeletedKeyWithLiveDocIsResurrected) {
  contents_["b0"][ShardForKey("d", 4)]["d"] = Doc("d", 150, 7, "{\"old\":1}");
  CheckReport r = Eval();
  EXPECT_EQ(r.resurrected, 1u);
  EXPECT_FALSE(r.ok());
}

TEST_F(EvaluateTest, DeleteWithNoDocumentAtAllIsFine) {
  contents_["b0"][ShardForKey("d", 4)].erase("d");
  EXPECT_TRUE(Eval().ok());
}

TEST_F(EvaluateTest, SameVersionOtherBodyIsMismatch) {
  contents_["b0"][ShardForKey("p", 4)]["p"] = Doc("p", 100, 7, "{\"n\":2}");
  EXPECT_EQ(Eval().mismatched, 1u);
}

TEST_F(EvaluateTest, NonOwnerHoldingTheShardIsWrongOwner) {
  uint32_t s = ShardForKey("p", 4);
  contents_[NonOwnerA("p")][s]["p"] = Doc("p", 100, 7, put_.body);
  CheckReport r = Eval();
  EXPECT_EQ(r.wrong_owner, 1u);
  EXPECT_THAT(r.Summary(), HasSubstr("not one of its owners"));
}

TEST_F(EvaluateTest, KeyInAnotherShardIsWrongOwner) {
  uint32_t s = ShardForKey("p", 4);
  uint32_t other = (s + 2) % 4;  // same a-node parity, so the node owns `other`
  contents_[OwnerA("p")][other]["p"] = Doc("p", 100, 7, put_.body);
  EXPECT_EQ(Eval().wrong_owner, 1u);
}

TEST_F(EvaluateTest, UnknownKeysAreNotJudgedAndUnreadableNodesFail) {
  records_["p"].unknown = true;
  contents_["b0"][ShardForKey("p", 4)].erase("p");
  CheckReport r = Eval();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.keys_unknown, 1u);
  unreadable_.insert("a0");
  EXPECT_FALSE(Eval().ok());
}

// ---- against the real programs ----------------------------------------------

TEST(TestWriterFleet, WritesThroughWorkersAndThePromiseHolds) {
  TempDir tmp("writer");
  FleetOptions fo;
  fo.group_sizes = {2, 2};
  fo.indexes = {{"products", 8, 1}};
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  WriterOptions wo = (*fleet)->WriterOptionsFor("products");
  wo.keys = 200;
  wo.max_ops = 2000;
  wo.max_duration = absl::Seconds(20);
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Run().ok());
  WriterStats st = writer.stats();
  EXPECT_GT(st.acked_puts, 0u);
  EXPECT_GT(st.acked_deletes, 0u);
  EXPECT_EQ(st.unknown, 0u);
  auto report = CheckPromise(writer.records(), (*fleet)->CheckOptionsFor("products"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->Summary();
  EXPECT_EQ(report->acknowledged_writes, st.acked());
}

TEST(TestWriterFleet, CheckCatchesADocumentRemovedBehindTheSystemsBack) {
  TempDir tmp("writer");
  FleetOptions fo;
  fo.group_sizes = {1};
  fo.workers = 1;
  fo.indexes = {{"products", 4, 1}};
  auto fleet = Fleet::Start(tmp.path(), fo);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  WriterOptions wo = (*fleet)->WriterOptionsFor("products");
  wo.keys = 20;
  wo.delete_fraction = 0;
  wo.max_ops = 20;
  wo.batch_size = 20;
  wo.streams = 1;
  TestWriter writer(wo);
  ASSERT_TRUE(writer.Run().ok());
  ASSERT_EQ(writer.stats().acked_puts, 20u);
  // Wipe the node: every acknowledged put is now lost, and the check must say so.
  ASSERT_TRUE((*fleet)->redis("r0").Command({"FLUSHALL"}).ok());
  auto report = CheckPromise(writer.records(), (*fleet)->CheckOptionsFor("products"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->lost, 20u) << report->Summary();
}

}  // namespace
}  // namespace miroir::testing
