// TcpProxy on a real redis-server: each mode does what it says, and the proxy
// returns to pass afterwards.
#include <gtest/gtest.h>

#include <thread>

#include "harness/redis_node.h"
#include "harness/tcp_proxy.h"
#include "harness/temp_dir.h"

namespace miroir::testing {
namespace {

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = RedisNode::Start(tmp_.Subdir("r0"));
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    auto proxy = TcpProxy::Start(node_->port());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(*proxy);
  }
  absl::StatusOr<std::string> ViaProxy(const std::vector<std::string>& argv, int timeout_ms) {
    return RedisCommand(proxy_->address(), argv, timeout_ms);
  }

  TempDir tmp_{"proxy"};
  std::unique_ptr<RedisNode> node_;
  std::unique_ptr<TcpProxy> proxy_;
};

TEST_F(ProxyTest, PassForwardsBothWays) {
  ASSERT_EQ(*ViaProxy({"SET", "a", "1"}, 2000), "OK");
  EXPECT_EQ(*node_->Command({"GET", "a"}), "1");
  EXPECT_EQ(*ViaProxy({"GET", "a"}, 2000), "1");
  EXPECT_GE(proxy_->connections_accepted(), 2u);
  EXPECT_GT(proxy_->bytes_forwarded(), 0u);
}

TEST_F(ProxyTest, CutRefusesThenPassRecovers) {
  proxy_->Cut();
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {  // the loop closes the listener shortly
    refused = !ViaProxy({"PING"}, 300).ok();
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(refused);
  EXPECT_EQ(*node_->Command({"PING"}), "PONG");  // the node itself is fine
  proxy_->Pass();
  absl::StatusOr<std::string> pong;
  for (int i = 0; i < 100; ++i) {
    pong = ViaProxy({"PING"}, 1000);
    if (pong.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(*pong, "PONG");
}

TEST_F(ProxyTest, DelayOutlastsAShortTimeoutButNotALongOne) {
  proxy_->Delay(absl::Milliseconds(600));  // 1.2 s round trip
  EXPECT_FALSE(ViaProxy({"PING"}, 300).ok());
  auto pong = ViaProxy({"PING"}, 10000);
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(*pong, "PONG");
  proxy_->Pass();
  EXPECT_EQ(*ViaProxy({"PING"}, 2000), "PONG");
}

TEST_F(ProxyTest, HoldBuffersUntilRelease) {
  proxy_->Hold();
  absl::StatusOr<std::string> reply;
  std::thread writer([&] { reply = ViaProxy({"SET", "held", "v"}, 20000); });
  for (int i = 0; i < 500 && proxy_->bytes_buffered() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(proxy_->bytes_buffered(), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(*node_->Command({"GET", "held"}), "(nil)");  // not delivered while held
  proxy_->Release();
  writer.join();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "OK");
  EXPECT_EQ(*node_->Command({"GET", "held"}), "v");
}

TEST_F(ProxyTest, BlackholeAcceptsAndNeverAnswers) {
  proxy_->Blackhole();
  uint64_t before = proxy_->connections_accepted();
  auto r = ViaProxy({"SET", "bh", "v"}, 300);
  EXPECT_FALSE(r.ok());
  EXPECT_GT(proxy_->connections_accepted(), before);   // it accepted
  EXPECT_EQ(*node_->Command({"GET", "bh"}), "(nil)");  // and never forwarded
  proxy_->Pass();
  EXPECT_EQ(*ViaProxy({"PING"}, 2000), "PONG");
}

TEST_F(ProxyTest, DestructorStopsAndClosesEverything) {
  ASSERT_EQ(*ViaProxy({"PING"}, 2000), "PONG");
  std::string address = proxy_->address();
  proxy_.reset();
  EXPECT_FALSE(RedisCommand(address, {"PING"}, 300).ok());
}

}  // namespace
}  // namespace miroir::testing
