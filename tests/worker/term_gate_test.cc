#include "worker/term_gate.h"

#include <gtest/gtest.h>

namespace miroir {
namespace {

TEST(TermGate, ALowerTermIsDroppedAndEqualOrHigherAdmitted) {
  TermGate g;
  EXPECT_TRUE(g.Admit(0)) << "SQLite: every message carries term 0";
  EXPECT_TRUE(g.Admit(0));
  EXPECT_TRUE(g.Admit(41)) << "the first etcd leader";
  EXPECT_TRUE(g.Admit(41));
  EXPECT_TRUE(g.Admit(57)) << "a failover";
  EXPECT_FALSE(g.Admit(41)) << "the deposed leader's late view or task";
  EXPECT_FALSE(g.Admit(0));
  EXPECT_EQ(g.highest(), 57u);
  EXPECT_TRUE(g.Admit(57));
}

}  // namespace
}  // namespace miroir
