#include "coordinator/state_upgrade.h"

#include <gtest/gtest.h>

#include <string>

#include "coordinator/cluster_state.h"
#include "coordinator/sqlite_state_store.h"
#include "google/protobuf/unknown_field_set.h"
#include "tests/coordinator/test_util.h"

namespace miroir::coordinator {
namespace {

// The bytes a version before the enums wrote: state, failed_from and step as
// strings in fields 7, 8 and 34.
std::string LegacyBytes(const v1::ReshardRecord& base, const std::string& state,
                        const std::string& failed_from, const std::string& step) {
  v1::ReshardRecord r = base;
  auto* u = r.GetReflection()->MutableUnknownFields(&r);
  u->AddLengthDelimited(7, state);
  u->AddLengthDelimited(8, failed_from);
  if (!step.empty()) u->AddLengthDelimited(34, step);
  return r.SerializeAsString();
}

v1::ReshardRecord Loaded(const std::string& bytes) {
  v1::ReshardRecord r;
  EXPECT_TRUE(r.ParseFromString(bytes));
  return r;
}

v1::ReshardRecord Base() {
  v1::ReshardRecord r;
  r.set_id(12);
  r.set_index("movies");
  r.set_old_shards(8);
  r.set_new_shards(16);
  r.set_paused_at_ms(1234);
  return r;
}

TEST(StateUpgradeTest, OldStringStateBecomesTheEnumOnce) {
  v1::ReshardRecord r = Loaded(LegacyBytes(Base(), "swap_paused", "shadow", "fencing"));
  ASSERT_TRUE(UpgradeReshardRecord(&r).ok());
  EXPECT_EQ(r.state(), v1::RESHARD_SWAP_PAUSED);
  EXPECT_EQ(r.failed_from(), v1::RESHARD_SHADOW);
  EXPECT_EQ(r.step(), v1::RESHARD_STEP_FENCING);
  EXPECT_EQ(r.paused_at_ms(), 1234) << "the rest of the record is kept";
  // The strings are gone: saved and loaded again, the enums are what is read.
  EXPECT_EQ(r.GetReflection()->GetUnknownFields(r).field_count(), 0);
  r.set_state(v1::RESHARD_SWAP_FENCED);
  v1::ReshardRecord again = Loaded(r.SerializeAsString());
  ASSERT_TRUE(UpgradeReshardRecord(&again).ok());
  EXPECT_EQ(again.state(), v1::RESHARD_SWAP_FENCED);
}

TEST(StateUpgradeTest, FailedRecordKeepsWhereItFailed) {
  v1::ReshardRecord r = Loaded(LegacyBytes(Base(), "failed", "retention", ""));
  ASSERT_TRUE(UpgradeReshardRecord(&r).ok());
  EXPECT_EQ(r.state(), v1::RESHARD_FAILED);
  EXPECT_EQ(r.failed_from(), v1::RESHARD_RETENTION);
  EXPECT_EQ(r.step(), v1::RESHARD_STEP_NONE);
}

TEST(StateUpgradeTest, UnparsableOldStateIsRefusedNotFailed) {
  const std::string bytes = LegacyBytes(Base(), "swap_pausd", "shadow", "");
  v1::ReshardRecord r = Loaded(bytes);
  absl::Status st = UpgradeReshardRecord(&r);
  ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("reshard 12 state"), std::string::npos) << st;
  EXPECT_NE(st.message().find("'swap_pausd'"), std::string::npos) << st;
  EXPECT_EQ(r.state(), v1::RESHARD_STATE_UNSPECIFIED);
  EXPECT_EQ(r.SerializeAsString(), bytes) << "a refused record is left unchanged";

  v1::ReshardRecord step = Loaded(LegacyBytes(Base(), "rolling_back", "retention", "sideways"));
  st = UpgradeReshardRecord(&step);
  ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("step"), std::string::npos) << st;
}

TEST(StateUpgradeTest, RecordWithoutAKnownStateIsRefused) {
  v1::ReshardRecord r = Base();  // neither a string nor an enum state
  EXPECT_EQ(UpgradeReshardRecord(&r).code(), absl::StatusCode::kDataLoss);
  r.set_state(static_cast<v1::ReshardState>(99));
  EXPECT_EQ(UpgradeReshardRecord(&r).code(), absl::StatusCode::kDataLoss);
  r.set_state(v1::RESHARD_BACKFILL);
  EXPECT_TRUE(UpgradeReshardRecord(&r).ok());
  EXPECT_EQ(r.state(), v1::RESHARD_BACKFILL);
}

TEST(StateUpgradeTest, ReconciledMarkerFenceBecomesItsField) {
  v1::Move m;
  m.set_id(5);
  m.set_state(v1::MOVE_ABORTING);
  v1::Watermark* real = m.add_fences();
  real->set_node("r1");
  real->set_seq(40);
  m.add_fences()->set_node("reconciled");
  UpgradeMove(&m);
  EXPECT_TRUE(m.abort_reconciled());
  ASSERT_EQ(m.fences_size(), 1);
  EXPECT_EQ(m.fences(0).node(), "r1");

  v1::Move plain;
  plain.add_fences()->set_node("r2");
  UpgradeMove(&plain);
  EXPECT_FALSE(plain.abort_reconciled());
  EXPECT_EQ(plain.fences_size(), 1);
}

// A data dir an earlier version wrote (string reshard state, reconciled marker
// fence) loads, converted; one with an unparsable state is refused naming it.
TEST(StateUpgradeTest, DataDirOfTheEarlierVersionLoads) {
  testing::TempDir dir;
  auto store = SqliteStateStore::Open(dir.path() + "/coordinator.db");
  ASSERT_TRUE(store.ok()) << store.status();
  v1::Move move;
  move.set_id(5);
  move.set_state(v1::MOVE_ABORTING);
  move.add_fences()->set_node("reconciled");
  StateWrite w;
  w.Set(kKindReshard, "00000000000000000012", LegacyBytes(Base(), "retention", "shadow", ""));
  w.Set(kKindMove, "00000000000000000005", move.SerializeAsString());
  ASSERT_TRUE((*store)->Commit(w).ok());
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto state = ClusterState::FromLoaded(*loaded);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->reshards.at(12).state(), v1::RESHARD_RETENTION);
  EXPECT_TRUE(state->moves.at(5).abort_reconciled());
  EXPECT_EQ(state->moves.at(5).fences_size(), 0);

  StateWrite bad;
  bad.Set(kKindReshard, "00000000000000000012", LegacyBytes(Base(), "retained", "shadow", ""));
  ASSERT_TRUE((*store)->Commit(bad).ok());
  loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok());
  auto refused = ClusterState::FromLoaded(*loaded);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(refused.status().message().find("'retained'"), std::string::npos) << refused.status();
}

}  // namespace
}  // namespace miroir::coordinator
