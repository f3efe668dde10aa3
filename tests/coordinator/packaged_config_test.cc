// The configs the Debian packages install in /etc/miroir load as they are.
#include <gtest/gtest.h>

#include "coordinator/config.h"

namespace miroir::coordinator {
namespace {

TEST(PackagedConfig, CoordinatorYamlLoadsAndPointsAtTheStateDirectory) {
  auto c = LoadCoordinatorConfig(std::string(MIROIR_SOURCE_DIR) + "/deploy/etc/coordinator.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:7400");
  EXPECT_EQ(c->data_dir, "/var/lib/miroir-coordinator");  // the unit's StateDirectory
  EXPECT_TRUE(ValidateCoordinatorConfig(*c).ok());
}

}  // namespace
}  // namespace miroir::coordinator
