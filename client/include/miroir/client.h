// miroir C++ client: writes and reads through the DataPlane API of a list of
// workers (DESIGN §4), with the session guarantees a program needs and would
// otherwise rebuild by hand.
//
// Contract of a Session (every method):
//
// - Input is validated before any RPC, with the worker's own rules (one copy,
//   worker/write_validation.h): index non-empty, pk 1..511 bytes, a put's body
//   a JSON object without "_miroir_*" fields, expires_at_ms >= 0. A bad item
//   gets INVALID_ARGUMENT naming the field ("pk: must not be empty") and is
//   never sent; the other items of the same Write proceed.
// - Sequential operations on a key keep the §4 promise across workers: the
//   session keeps, per (index, pk), the version of the last acknowledged
//   operation and passes it (or something higher, below) as `after_version`,
//   so the next write on the key is stamped above it whichever worker stamps
//   it. A key appears at most once per Write call (INVALID_ARGUMENT otherwise):
//   two operations on a key in one call would be concurrent, not sequential.
// - Retries: an item whose ack is UNAVAILABLE / ABORTED / DEADLINE_EXCEEDED /
//   RESOURCE_EXHAUSTED (no quorum, a fenced re-route that ran out of time, a
//   paused shard, a lapsed lease) is retried with bounded exponential backoff
//   (initial_backoff doubling to max_backoff, at most max_attempts attempts in
//   all). The error ack carries the highest version the worker sent for the
//   item; the session folds it into the key's `after_version`, so the retry is
//   stamped above an attempt that may still land.
// - Failover: a stream that breaks or times out (worker killed, unreachable)
//   moves the session to the next worker of the list, and the items without an
//   ack are retried there. Their first attempt's outcome is unknown and its
//   version too: the retry's `after_version` is raised to the client's clock
//   plus `clock_skew_allowance`, which stamps it above that attempt as long as
//   the workers' clocks are within that allowance of the client's.
// - Final errors (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...) are
//   reported per item as the worker said them, never retried. An item still
//   failing after max_attempts reports its last error; its outcome is unknown
//   (the key's `after_version` stays raised, so later writes on it still win).
// - Reads pass the key's last acknowledged version as `after_version` (read
//   your writes): a found document is at least that version; a read set that
//   does not hold it yet answers FAILED_PRECONDITION (retried like UNAVAILABLE,
//   since a recovery pass or a lagging replica can catch up).
// - Back-pressure: Write sends its batches (max_batch_items items each) on one
//   stream with at most max_batches_in_flight unacknowledged; the call blocks
//   until every item has a result. It returns one result per item, in order.
// - Each ack exposes its degraded groups (groups that missed the write, §4),
//   the shard and the routing epoch it was written at.
//
// Thread-safety: a Session is safe to use from several threads; operations on
// one key must still be issued one after another to be sequential. Calls block
// (no lock is held across an RPC). Sessions of one Client share its channels.
#ifndef MIROIR_CLIENT_H_
#define MIROIR_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace miroir::client {

struct ClientOptions {
  // Workers' DataPlane addresses (HOST:PORT), at least one. The session starts
  // on the first and moves to the next when a stream to it fails.
  std::vector<std::string> workers;
  // Deadline of one Get attempt; a Write attempt's stream gets this much per
  // batch it carries.
  absl::Duration call_timeout = absl::Seconds(10);
  // Attempts per item (first try included), >= 1.
  int max_attempts = 6;
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(2);
  // Items per WriteBatch, 1..10000.
  int max_batch_items = 256;
  // Batches sent on a stream before the first ack must come back, >= 1.
  int max_batches_in_flight = 4;
  // How far a worker's clock may be ahead of this client's (see Failover).
  absl::Duration clock_skew_allowance = absl::Milliseconds(500);
};

// One write: a put (pk, body, optional expiry) or a delete of `pk` in `index`.
struct Mutation {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string index;
  std::string pk;
  std::string body;           // puts: a JSON object
  int64_t expires_at_ms = 0;  // puts: unix ms, 0 never

  static Mutation Put(std::string index, std::string pk, std::string body,
                      int64_t expires_at_ms = 0);
  static Mutation Delete(std::string index, std::string pk);
};

// The outcome of one Mutation.
struct WriteResult {
  absl::Status status;                       // OK, or the final error of the item
  uint64_t version = 0;                      // version applied (OK)
  uint64_t writer = 0;                       // writer id that stamped it (OK)
  std::vector<std::string> degraded_groups;  // groups that missed the write (OK)
  uint32_t shard = 0;                        // shard of the key (OK)
  uint64_t epoch = 0;                        // routing epoch of the write (OK)
  int attempts = 0;                          // sends of the item (0: never sent)
  std::string worker;                        // worker that answered last
  bool degraded() const { return !degraded_groups.empty(); }
};

struct ReadResult {
  bool found = false;    // a live document at or above the session's token
  std::string body;      // its body (found)
  uint64_t version = 0;  // version of the document or tombstone read
  uint64_t writer = 0;
  int64_t expires_at_ms = 0;
  std::string node;    // node that answered
  std::string worker;  // worker that served the read
};

// What to do with a failure (pure; exposed for tests and callers' own loops).
enum class Disposition {
  kDone,   // OK
  kRetry,  // retry (through the next worker when the transport failed)
  kFinal,  // report; never retried
};
// An item's ack code (grpc::StatusCode as in WriteAck.code).
Disposition ClassifyWriteAck(int code);
// The status of a stream or a Get call (transport and call-level failures).
// `read` adds FAILED_PRECONDITION (token not yet held by the read set).
Disposition ClassifyCall(absl::StatusCode code, bool read);
// The i-th retry's pause (i >= 1): initial * 2^(i-1), capped at max, with the
// jitter fraction `jitter01` in [0, 1) taking up to half of it off.
absl::Duration Backoff(int retry, absl::Duration initial, absl::Duration max, double jitter01);
// Validation of one mutation before any RPC (the worker's rules).
absl::Status ValidateMutation(const Mutation& m);

class Session;

// Holds the channels to the workers. Cheap to share; outlives its sessions.
class Client {
 public:
  // INVALID_ARGUMENT on bad options (naming the option).
  static absl::StatusOr<std::shared_ptr<Client>> Create(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // A new session: its own per-key tokens, starting on the first worker.
  std::unique_ptr<Session> NewSession();
  const ClientOptions& options() const;

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Writes every mutation (batched, pipelined, retried, failed over); one
  // result per mutation, in order. Blocks until all have a result.
  std::vector<WriteResult> Write(const std::vector<Mutation>& mutations);
  // One put / delete: the item's result, or its error as the status.
  absl::StatusOr<WriteResult> Put(const std::string& index, const std::string& pk,
                                  const std::string& body, int64_t expires_at_ms = 0);
  absl::StatusOr<WriteResult> Delete(const std::string& index, const std::string& pk);
  // Reads `pk` with the session's token for it (read your writes). Not found
  // is a result (found = false), not an error.
  absl::StatusOr<ReadResult> Get(const std::string& index, const std::string& pk);

  // The version of the last acknowledged operation on the key (0 none), the
  // read token.
  uint64_t AckedVersion(const std::string& index, const std::string& pk) const;
  // What the next write on the key passes as after_version (>= AckedVersion).
  uint64_t AfterVersion(const std::string& index, const std::string& pk) const;
  // Worker the session currently sends to.
  std::string CurrentWorker() const;

  struct Impl;

 private:
  friend class Client;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace miroir::client

#endif  // MIROIR_CLIENT_H_
