#include "coordinator/config.h"

#include <gtest/gtest.h>

namespace miroir::coordinator {
namespace {

TEST(CoordinatorConfig, DefaultsMatchTheDesign) {
  auto c = ParseCoordinatorConfig("", "c.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->migration.skip_delta_pass);
  EXPECT_EQ(c->migration.drain_timeout, absl::Milliseconds(20));
  EXPECT_EQ(c->migration.catch_up_threshold, 1000u);
  EXPECT_EQ(c->migration.catch_up_max, absl::Hours(1));
  EXPECT_EQ(c->migration.max_write_stall, absl::Seconds(2));
  EXPECT_EQ(c->migration.retain_moved_shard, absl::Hours(1));
  EXPECT_EQ(c->migration.max_cutovers_per_node, 1u);
  EXPECT_EQ(c->migration.backfill_batch_size, 200u);
  EXPECT_EQ(c->worker_lease_ttl, absl::Seconds(10));
  EXPECT_EQ(c->max_clock_drift, absl::Milliseconds(500));
  EXPECT_TRUE(c->anti_entropy.enabled);
  EXPECT_EQ(c->anti_entropy.schedule, absl::Hours(6));
  EXPECT_EQ(c->anti_entropy.tombstone_grace, absl::Hours(24 * 7));
  EXPECT_TRUE(c->resharding.enabled);
  EXPECT_EQ(c->listen, "127.0.0.1:7400");
  EXPECT_TRUE(ValidateCoordinatorConfig(*c).ok());
}

TEST(CoordinatorConfig, ParsesTheDesignExample) {
  const char* text = R"(schedule_windows:
  off-peak: "02:00-06:00"
migration:
  skip_delta_pass: false
  drain_timeout: 250ms
  catch_up_threshold: 50
  catch_up_max: 30m
  max_write_stall: 1s
  retain_moved_shard: 0s
  allowed_windows: [off-peak]
  max_cutovers_per_node: 2
worker_lease_ttl: 3s
anti_entropy:
  enabled: true
  schedule: every 2h
  tombstone_grace: 1d
resharding:
  enabled: false
  allowed_windows: ["22:00-01:00"]
)";
  auto c = ParseCoordinatorConfig(text, "c.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->schedule_windows.at("off-peak"), "02:00-06:00");
  EXPECT_EQ(c->migration.drain_timeout, absl::Milliseconds(250));
  EXPECT_EQ(c->migration.catch_up_threshold, 50u);
  EXPECT_EQ(c->migration.allowed_windows, std::vector<std::string>{"off-peak"});
  EXPECT_EQ(c->migration.max_cutovers_per_node, 2u);
  EXPECT_EQ(c->worker_lease_ttl, absl::Seconds(3));
  EXPECT_EQ(c->anti_entropy.schedule, absl::Hours(2));
  EXPECT_FALSE(c->resharding.enabled);
  EXPECT_TRUE(ValidateCoordinatorConfig(*c).ok());
}

struct BadCase {
  const char* text;
  const char* must_mention;
};

TEST(CoordinatorConfig, ParseErrorsNameTheKey) {
  const BadCase cases[] = {
      {"migraton: {}\n", "migraton"},
      {"migration:\n  drain_timout: 1s\n", "drain_timout"},
      {"migration:\n  drain_timeout: soon\n", "drain_timeout"},
      {"worker_lease_ttl: -3s\n", "worker_lease_ttl"},
      {"migration:\n  catch_up_threshold: many\n", "catch_up_threshold"},
      {"migration:\n  max_cutovers_per_node: -1\n", "max_cutovers_per_node"},
      {"migration:\n  backfill_batch_size: 0\n", "migration.backfill_batch_size"},
      {"schedule_windows:\n  night: \"25:00-02:00\"\n", "schedule_windows.night"},
      {"anti_entropy:\n  enabled: maybe\n", "enabled"},
  };
  for (const auto& bc : cases) {
    auto c = ParseCoordinatorConfig(bc.text, "c.yaml");
    ASSERT_FALSE(c.ok()) << bc.text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find(bc.must_mention), std::string::npos)
        << c.status().message();
  }
}

TEST(CoordinatorConfig, ValidationCrossChecks) {
  CoordinatorConfig c;
  c.migration.drain_timeout = absl::Seconds(3);
  auto st = ValidateCoordinatorConfig(c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("migration.drain_timeout"), std::string::npos);
  EXPECT_NE(st.message().find("migration.max_write_stall"), std::string::npos);

  c = CoordinatorConfig();
  c.migration.allowed_windows = {"lunch"};
  st = ValidateCoordinatorConfig(c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("lunch"), std::string::npos);

  c = CoordinatorConfig();
  c.migration.skip_delta_pass = true;
  c.anti_entropy.enabled = false;
  st = ValidateCoordinatorConfig(c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("migration.skip_delta_pass=true"), std::string::npos);
  EXPECT_NE(st.message().find("anti_entropy.enabled=false"), std::string::npos);
  c.anti_entropy.enabled = true;
  EXPECT_TRUE(ValidateCoordinatorConfig(c).ok());
  c.anti_entropy.enabled = false;
  c.test_allow_unsafe_skip_delta = true;
  EXPECT_TRUE(ValidateCoordinatorConfig(c).ok());
}

}  // namespace
}  // namespace miroir::coordinator
