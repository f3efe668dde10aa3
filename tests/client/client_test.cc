// The client library's decisions (retry classification, backoff) and its
// validation before any RPC. The "before any RPC" half runs a session against
// a loopback port nothing listens on: a valid item is sent (one attempt, an
// UNAVAILABLE outcome), a bad one never is (zero attempts, INVALID_ARGUMENT).
#include "miroir/client.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"

namespace miroir::client {
namespace {

TEST(ClassifyWriteAck, RetriesWhatTheWorkerSaysIsRetryable) {
  EXPECT_EQ(ClassifyWriteAck(0), Disposition::kDone);
  EXPECT_EQ(ClassifyWriteAck(14), Disposition::kRetry);  // UNAVAILABLE: no quorum, fenced re-route
  EXPECT_EQ(ClassifyWriteAck(10), Disposition::kRetry);  // ABORTED
  EXPECT_EQ(ClassifyWriteAck(4), Disposition::kRetry);   // DEADLINE_EXCEEDED
  EXPECT_EQ(ClassifyWriteAck(8), Disposition::kRetry);   // RESOURCE_EXHAUSTED
}

TEST(ClassifyWriteAck, ReportsFinalErrors) {
  EXPECT_EQ(ClassifyWriteAck(3), Disposition::kFinal);   // INVALID_ARGUMENT
  EXPECT_EQ(ClassifyWriteAck(5), Disposition::kFinal);   // NOT_FOUND (index)
  EXPECT_EQ(ClassifyWriteAck(9), Disposition::kFinal);   // FAILED_PRECONDITION
  EXPECT_EQ(ClassifyWriteAck(7), Disposition::kFinal);   // PERMISSION_DENIED
  EXPECT_EQ(ClassifyWriteAck(13), Disposition::kFinal);  // INTERNAL
  EXPECT_EQ(ClassifyWriteAck(12), Disposition::kFinal);  // UNIMPLEMENTED
}

TEST(ClassifyCall, TransportFailuresRetryAndAReadWaitsForItsToken) {
  EXPECT_EQ(ClassifyCall(absl::StatusCode::kOk, false), Disposition::kDone);
  EXPECT_EQ(ClassifyCall(absl::StatusCode::kUnavailable, false), Disposition::kRetry);
  EXPECT_EQ(ClassifyCall(absl::StatusCode::kDeadlineExceeded, false), Disposition::kRetry);
  EXPECT_EQ(ClassifyCall(absl::StatusCode::kUnavailable, true), Disposition::kRetry);
  // A read set that does not hold the session's token yet may catch up.
  EXPECT_EQ(ClassifyCall(absl::StatusCode::kFailedPrecondition, true), Disposition::kRetry);
  EXPECT_EQ(ClassifyCall(absl::StatusCode::kFailedPrecondition, false), Disposition::kFinal);
  EXPECT_EQ(ClassifyCall(absl::StatusCode::kInvalidArgument, true), Disposition::kFinal);
  EXPECT_EQ(ClassifyCall(absl::StatusCode::kNotFound, false), Disposition::kFinal);
  EXPECT_EQ(ClassifyCall(absl::StatusCode::kCancelled, false), Disposition::kFinal);
}

TEST(Backoff, DoublesUpToTheCapAndJitterTakesAtMostHalf) {
  const absl::Duration i = absl::Milliseconds(50), m = absl::Milliseconds(300);
  EXPECT_EQ(Backoff(0, i, m, 0), absl::ZeroDuration());
  EXPECT_EQ(Backoff(1, i, m, 0), absl::Milliseconds(50));
  EXPECT_EQ(Backoff(2, i, m, 0), absl::Milliseconds(100));
  EXPECT_EQ(Backoff(3, i, m, 0), absl::Milliseconds(200));
  EXPECT_EQ(Backoff(4, i, m, 0), absl::Milliseconds(300));
  EXPECT_EQ(Backoff(60, i, m, 0), absl::Milliseconds(300));  // bounded, no overflow
  EXPECT_EQ(Backoff(3, i, m, 0.5), absl::Milliseconds(150));
  EXPECT_GT(Backoff(3, i, m, 0.999), absl::Milliseconds(100));
}

TEST(ValidateMutation, NamesTheField) {
  EXPECT_TRUE(ValidateMutation(Mutation::Put("products", "k", R"({"a":1})")).ok());
  EXPECT_TRUE(ValidateMutation(Mutation::Put("products", std::string(511, 'p'), "{}")).ok());
  EXPECT_TRUE(ValidateMutation(Mutation::Delete("products", "k")).ok());

  auto expect = [](const Mutation& m, const std::string& field) {
    absl::Status s = ValidateMutation(m);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(s.message().substr(0, field.size() + 1), field + ":") << s;
  };
  expect(Mutation::Put("products", "", "{}"), "pk");
  expect(Mutation::Put("products", std::string(512, 'p'), "{}"), "pk");
  expect(Mutation::Delete("products", ""), "pk");
  expect(Mutation::Delete("products", std::string(512, 'p')), "pk");
  expect(Mutation::Put("products", "k", "[1,2]"), "body");
  expect(Mutation::Put("products", "k", "\"text\""), "body");
  expect(Mutation::Put("products", "k", "{"), "body");
  expect(Mutation::Put("products", "k", R"({"_miroir_v":1})"), "body");
  expect(Mutation::Put("", "k", "{}"), "index");
  expect(Mutation::Put("products", "k", "{}", -1), "expires_at_ms");
}

TEST(ClientOptions, BadOptionsAreRefusedNamingTheOption) {
  ClientOptions o;
  auto c = Client::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(c.status().message(), "workers:")) << c.status();
  o.workers = {"127.0.0.1:1"};
  o.max_attempts = 0;
  c = Client::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::StartsWith(c.status().message(), "max_attempts:")) << c.status();
  o.max_attempts = 1;
  o.max_batch_items = 0;
  EXPECT_FALSE(Client::Create(o).ok());
}

// Nothing listens on port 1 of loopback: whatever is sent fails UNAVAILABLE.
std::unique_ptr<Session> DeadSession(std::shared_ptr<Client>* keep) {
  ClientOptions o;
  o.workers = {"127.0.0.1:1"};
  o.max_attempts = 1;
  o.call_timeout = absl::Seconds(5);
  auto c = Client::Create(o);
  EXPECT_TRUE(c.ok()) << c.status();
  *keep = *c;
  return (*keep)->NewSession();
}

TEST(Session, BadInputIsRejectedBeforeAnyRpc) {
  std::shared_ptr<Client> client;
  auto session = DeadSession(&client);
  auto results = session->Write({
      Mutation::Put("products", "", "{}"),                     // empty pk
      Mutation::Put("products", std::string(512, 'x'), "{}"),  // oversized pk
      Mutation::Put("products", "a", "[]"),                    // body not an object
      Mutation::Put("products", "ok", R"({"n":1})"),           // valid: sent
      Mutation::Delete("products", "ok"),                      // same key twice in one call
  });
  ASSERT_EQ(results.size(), 5u);
  for (int i : {0, 1, 2, 4}) {
    EXPECT_EQ(results[i].status.code(), absl::StatusCode::kInvalidArgument) << i;
    EXPECT_EQ(results[i].attempts, 0) << i;
  }
  EXPECT_TRUE(absl::StartsWith(results[0].status.message(), "pk:"));
  EXPECT_TRUE(absl::StartsWith(results[1].status.message(), "pk:"));
  EXPECT_TRUE(absl::StartsWith(results[2].status.message(), "body:"));
  EXPECT_TRUE(absl::StartsWith(results[4].status.message(), "pk:"));
  // The valid item was sent, and its failure is a transport one.
  EXPECT_EQ(results[3].attempts, 1);
  EXPECT_EQ(results[3].status.code(), absl::StatusCode::kUnavailable) << results[3].status;

  auto put = session->Put("products", "", "{}");
  EXPECT_EQ(put.status().code(), absl::StatusCode::kInvalidArgument);
  auto get = session->Get("products", std::string(512, 'x'));
  EXPECT_EQ(get.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(get.status().message(), "pk:")) << get.status();
  auto get2 = session->Get("", "k");
  EXPECT_TRUE(absl::StartsWith(get2.status().message(), "index:")) << get2.status();
}

TEST(Session, AnUnknownOutcomeRaisesTheKeysAfterVersionNotItsReadToken) {
  std::shared_ptr<Client> client;
  auto session = DeadSession(&client);
  EXPECT_EQ(session->AfterVersion("products", "k"), 0u);
  const int64_t before_ms = absl::ToUnixMillis(absl::Now());
  auto r = session->Put("products", "k", R"({"n":1})");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  // A retry through another worker must be stamped above an attempt that may
  // still land: at least the client's clock plus the skew allowance.
  const uint64_t after = session->AfterVersion("products", "k");
  EXPECT_GE(after >> 16, static_cast<uint64_t>(before_ms + 500));
  EXPECT_EQ(session->AckedVersion("products", "k"),
            0u);  // nothing acknowledged: reads need no token
  EXPECT_EQ(session->AfterVersion("products", "other"), 0u);
}

}  // namespace
}  // namespace miroir::client
