// Store credentials (DESIGN §13, issue 20 item 4) against a real redis-server
// running with ACLs (harness RedisNode with a RedisAcl: the `default` user off):
// the adapter authenticates every connection as the configured ACL user, a wrong
// or missing password is refused with a message naming the user and never the
// password, and a node address that is not loopback is refused unless
// store.insecure is set (the Redis client has no TLS).
#include <gtest/gtest.h>

#include <fstream>

#include "common/tls.h"
#include "harness/redis_node.h"
#include "harness/temp_dir.h"
#include "worker/stores/redis_store.h"
#include "worker/worker_config.h"

namespace miroir {
namespace {

using testing::RedisAcl;
using testing::RedisNode;
using testing::TempDir;

constexpr char kPassword[] = "pw-7f3a9c0e41d2b6";

class StoreCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = RedisNode::Start(dir_.Subdir("redis"), 0, RedisAcl{"miroir", kPassword});
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
  }

  absl::Status PutOne(const StoreOptions& opts) {
    auto store = RedisStore::Create(node_->address(), opts);
    if (!store.ok()) return store.status();
    auto r = (*store)->Apply(shard_, 1, {Mutation{"a", Version{100, 7}, false, "{}", 0}});
    return r.status();
  }

  TempDir dir_{"store-creds"};
  std::unique_ptr<RedisNode> node_;
  ShardKey shard_{"products", 1, 0};
};

TEST_F(StoreCredentialsTest, TheAclUserWritesAndReads) {
  StoreOptions opts;
  opts.username = "miroir";
  opts.password = kPassword;
  ASSERT_TRUE(PutOne(opts).ok());
  auto store = RedisStore::Create(node_->address(), opts);
  ASSERT_TRUE(store.ok());
  auto d = (*store)->Get(shard_, 1, "a");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->version, (Version{100, 7}));
}

TEST_F(StoreCredentialsTest, NoCredentialsIsRefusedByTheNode) {
  absl::Status s = PutOne(StoreOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("NOAUTH"), absl::string_view::npos) << s;
}

TEST_F(StoreCredentialsTest, AWrongPasswordNamesTheUserNeverAPassword) {
  StoreOptions opts;
  opts.username = "miroir";
  opts.password = "not-the-password-5521";
  absl::Status s = PutOne(opts);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("AUTH as user miroir refused: WRONGPASS"), absl::string_view::npos)
      << s;
  EXPECT_EQ(s.message().find("not-the-password-5521"), absl::string_view::npos) << s;
  EXPECT_EQ(s.message().find(kPassword), absl::string_view::npos) << s;
}

TEST(StoreAddress, NonLoopbackIsRefusedUnlessInsecure) {
  for (const char* a : {"10.1.2.3:6379", "db.example.internal:6379", "[2001:db8::1]:6379"}) {
    auto s = MakeStoreAdapter("redis", a, StoreOptions{});
    ASSERT_FALSE(s.ok()) << a;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition) << s.status();
    EXPECT_NE(s.status().message().find("store.insecure"), absl::string_view::npos) << s.status();
    EXPECT_NE(s.status().message().find(a), absl::string_view::npos) << s.status();
    StoreOptions insecure;
    insecure.insecure = true;
    EXPECT_TRUE(MakeStoreAdapter("redis", a, insecure).ok()) << a;
  }
  // Loopback (where a local TLS tunnel listens) needs no opt-in. Creating an
  // adapter does not connect.
  for (const char* a : {"127.0.0.1:6379", "127.8.9.10:1", "localhost:6379", "[::1]:6379"}) {
    EXPECT_TRUE(MakeStoreAdapter("redis", a, StoreOptions{}).ok()) << a;
  }
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("128.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("localhost.example.com"));
}

TEST(StoreCredentialsConfig, PasswordComesFromItsFileAndNeverShowsInErrors) {
  TempDir dir("store-creds-config");
  const std::string file = dir.path() + "/store.password";
  std::ofstream(file) << "s3cret-from-file\n";
  auto c = ParseWorkerConfig(
      "store:\n  username: miroir\n  password_file: " + file + "\n  insecure: true\n", "w.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->store.username, "miroir");
  EXPECT_EQ(c->store.password, "s3cret-from-file");
  EXPECT_TRUE(c->store.insecure);
  // A user without a password file; a password file that cannot be read.
  c = ParseWorkerConfig("store:\n  username: miroir\n", "w.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("store.password_file"), absl::string_view::npos)
      << c.status();
  c = ParseWorkerConfig("store:\n  password_file: " + dir.path() + "/missing\n", "w.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("store.password_file"), absl::string_view::npos)
      << c.status();
  c = ParseWorkerConfig("store:\n  password: inline\n", "w.yaml");
  ASSERT_FALSE(c.ok()) << "a password inline in the YAML is not a key";
  EXPECT_EQ(c.status().message().find("inline"), absl::string_view::npos) << c.status();
}

}  // namespace
}  // namespace miroir
