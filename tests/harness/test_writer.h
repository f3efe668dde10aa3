// TestWriter: the one client every data-safety test uses (DESIGN §4). It streams
// puts and deletes through the public DataPlane.Write API of one or more
// workers, with a unique body per write, passing each key's last acknowledged
// version as `after_version`, keeping the operations on a key sequential (the
// next is issued only after the previous one's ack), recording every
// acknowledged operation, and never touching a key again after an unknown
// outcome (timeout, UNAVAILABLE, broken stream). Bounded by count and time,
// optionally rate-limited.
//
// CheckPromise() then verifies the promise against the store nodes themselves:
// every owner of each key holds exactly the last acknowledged operation (that
// body and version, or no live document after a delete), nothing deleted came
// back, and no node holds a shard of the live generation it does not own.
//
// Thread-safe: Start/Stop/Wait from the test thread; stats() and records() from
// any thread. Each stream runs on its own internal thread.
#ifndef MIROIR_TESTS_HARNESS_TEST_WRITER_H_
#define MIROIR_TESTS_HARNESS_TEST_WRITER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "miroir/v1/coordinator.grpc.pb.h"
#include "miroir/v1/dataplane.grpc.pb.h"
#include "worker/stores/store_adapter.h"

namespace miroir::testing {

struct WriterOptions {
  std::vector<std::string> worker_addresses;  // streams spread over these (HOST:PORT)
  std::string index = "products";
  std::string key_prefix = "doc:";  // keys are key_prefix + 0..keys-1
  int keys = 400;
  double delete_fraction = 0.2;  // share of operations that are deletes
  int streams = 2;               // concurrent Write streams; keys split between them
  int batch_size = 16;           // distinct keys per batch
  int64_t max_ops = 0;           // stop after this many issued operations (0: no bound)
  absl::Duration max_duration = absl::Seconds(10);
  double ops_per_second = 0;                         // total target rate (0: as fast as acks come)
  absl::Duration batch_timeout = absl::Seconds(10);  // then the batch's outcome is unknown
  int body_padding = 0;                              // extra bytes per body
  uint64_t seed = 0;                                 // 0: random
  // Put every key once (in key order) before the random mix starts: the
  // "load documents" phase of the demo and of the move tests.
  bool load_first = false;
  // The load_first pass deletes every key instead of putting it (e.g. "delete
  // every document loaded before"); the random mix follows as usual.
  bool load_deletes = false;
  // Each stream stops once its load_first pass is done (no random mix): every
  // key is written exactly once.
  bool load_only = false;
  // Send each batch through the next worker in worker_addresses (a new stream
  // per batch), so the operations on one key alternate between workers (e.g.
  // workers with skewed clocks). Default: a stream stays on its worker.
  bool rotate_workers = false;
};

// What the writer knows about one key.
struct KeyRecord {
  bool acked = false;    // some operation was acknowledged
  bool deleted = false;  // the last acknowledged one was a delete
  std::string body;      // its body (puts)
  uint64_t version = 0;  // its version and writer
  uint64_t writer = 0;
  uint64_t acked_ops = 0;  // acknowledged operations on the key
  bool unknown = false;    // an operation's outcome is unknown: key retired
};

struct WriterStats {
  uint64_t issued = 0;  // operations sent
  uint64_t acked_puts = 0;
  uint64_t acked_deletes = 0;
  uint64_t degraded = 0;  // acked with degraded groups
  uint64_t unknown = 0;   // outcome unknown (key retired)
  uint64_t rejected = 0;  // definite per-item errors (INVALID_ARGUMENT, NOT_FOUND, never sent)
  uint64_t stream_failures = 0;             // streams that broke or timed out
  absl::Duration max_batch_latency;         // longest send->ack of one batch (the write stall seen)
  std::vector<int64_t> batch_latencies_us;  // every acked batch (for percentiles)
  std::vector<int64_t> batch_sent_ms;       // unix ms each of those batches was sent
  std::vector<int> batch_acked_items;       // items acknowledged OK in each of those batches
  std::map<int, uint64_t> error_codes;      // per-item non-OK codes
  uint64_t acked() const { return acked_puts + acked_deletes; }
  // Writes the client did not get acknowledged: unknown outcomes (every item of
  // a broken or timed-out batch, per-item UNAVAILABLE or DEADLINE_EXCEEDED after
  // dispatch) and refusals — what a failover must keep at 0 (DESIGN §9a).
  uint64_t failed() const;
};

// "issued=… acked=… unknown=… codes: …" for a failure message or a log line.
std::string DescribeWrites(const WriterStats& st);

class TestWriter {
 public:
  explicit TestWriter(WriterOptions options);
  ~TestWriter();  // Stop() + Wait()
  TestWriter(const TestWriter&) = delete;
  TestWriter& operator=(const TestWriter&) = delete;

  // Starts the streams (non-blocking). INVALID_ARGUMENT on bad options.
  absl::Status Start();
  // Asks every stream to stop after its current batch.
  void Stop();
  // Joins the streams (they stop by themselves at max_ops / max_duration).
  void Wait();
  // Start + Wait.
  absl::Status Run();

  WriterStats stats() const;
  std::map<std::string, KeyRecord> records() const;
  const WriterOptions& options() const { return options_; }

 private:
  void StreamLoop(int stream_index);

  const WriterOptions options_;
  std::string run_id_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> issued_{0};
  std::atomic<uint64_t> body_seq_{0};
  absl::Time started_at_;
  std::vector<std::thread> threads_;
  mutable absl::Mutex mu_;
  std::map<std::string, KeyRecord> records_ ABSL_GUARDED_BY(mu_);
  WriterStats stats_ ABSL_GUARDED_BY(mu_);
};

// ---- the check ------------------------------------------------------------

// Snapshot of one shard replica read from a node: pk -> stored entry.
using ShardContents = std::map<std::string, StoredDoc>;

// Owners of every shard of the live generation, per group.
struct LiveRouting {
  std::string index;
  uint64_t generation = 0;
  uint32_t shards = 0;
  // shard -> group -> owner node ids
  std::vector<std::map<std::string, std::vector<std::string>>> owners;
};

struct CheckReport {
  uint64_t acknowledged_writes = 0;  // acknowledged operations (puts + deletes)
  uint64_t keys_checked = 0;         // keys with an ack and a known final outcome
  uint64_t keys_unknown = 0;         // retired after an unknown outcome (not judged)
  uint64_t lost = 0;                 // (key, owner) missing the last acked put
  uint64_t resurrected = 0;          // (key, owner) holding a live doc after an acked delete
  uint64_t mismatched = 0;           // (key, owner) holding another version/body
  uint64_t wrong_owner = 0;          // (node, shard) held by a non-owner, or key in wrong shard
  uint64_t unreachable = 0;          // nodes that could not be read
  // Repair writes of the anti-entropy runs the coordinator lists (it keeps the
  // last 50), read before the nodes; -1 when not asked or not answered.
  int64_t ae_repaired = -1;
  std::vector<std::string> failures;  // first failures, one line each (bounded)
  bool ok() const {
    return lost == 0 && resurrected == 0 && mismatched == 0 && wrong_owner == 0 && unreachable == 0;
  }
  std::string Summary() const;
};

// Pure evaluation of the promise (no I/O). `contents` maps node -> shard ->
// contents for every node read; nodes in `unreadable` could not be read.
CheckReport EvaluatePromise(
    const std::map<std::string, KeyRecord>& records, const LiveRouting& routing,
    const std::map<std::string, std::map<uint32_t, ShardContents>>& contents,
    const std::set<std::string>& unreadable);

struct CheckOptions {
  miroir::v1::Coordinator::Stub* coordinator = nullptr;  // REQUIRED
  // The coordinator's address, to read its anti-entropy runs (empty: not read).
  std::string coordinator_address;
  std::string index = "products";
  // Wait until no plan runs and no recovery pass is pending (then read).
  bool wait_quiescent = true;
  absl::Duration quiesce_timeout = absl::Seconds(60);
  // Workers report missed targets at most once a second: wait this long before
  // asking whether recovery passes are pending, so the last misses are counted.
  absl::Duration settle = absl::Milliseconds(2500);
  // node id -> address to read it at (default: the address in GetStatus, which
  // may be a proxy; the Fleet passes the redis address itself).
  std::map<std::string, std::string> address_override;
  // Nodes not read at all (e.g. a node killed for good and marked failed).
  std::set<std::string> skip_nodes;
};

// Waits for quiescence, reads the routing table and every node directly with
// the store adapter (kAnyEpoch), and evaluates the promise for `records`.
absl::StatusOr<CheckReport> CheckPromise(const std::map<std::string, KeyRecord>& records,
                                         const CheckOptions& options);

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_TEST_WRITER_H_
