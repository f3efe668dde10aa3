// The config the miroir-worker package installs in /etc/miroir loads as it is.
#include <gtest/gtest.h>

#include "worker/worker_config.h"

namespace miroir {
namespace {

TEST(PackagedConfig, WorkerYamlLoads) {
  auto c = LoadWorkerConfig(std::string(MIROIR_SOURCE_DIR) + "/deploy/etc/worker.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:7500");
  EXPECT_EQ(c->coordinator, "127.0.0.1:7400");
}

}  // namespace
}  // namespace miroir
