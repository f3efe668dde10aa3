// The read side of DESIGN §4 as pure decisions: which nodes a read of one shard
// may ask (its read set, per group) and which answer it returns — the highest
// version among q = floor(RF/2)+1 nodes of one group's read set, so a replica
// that missed a delete is outvoted by the quorum that acknowledged it. No I/O;
// any thread. DataPlaneService::Get does the store calls through QuorumRead.
#ifndef MIROIR_WORKER_READ_SET_H_
#define MIROIR_WORKER_READ_SET_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "miroir/v1/types.pb.h"
#include "worker/stores/store_adapter.h"

namespace miroir {

// The nodes of one group a read may ask, in rank order.
struct GroupReadSet {
  std::string group;
  std::vector<std::string> nodes;
};

// The read set of a shard: the route's read set (owners minus failed nodes and
// minus nodes joining or rejoining the shard, as the coordinator publishes it at
// the epoch; common/route_sets.h) minus every node `failed` names (the view's
// node status) and every node `excluded` names (pending recovery passes: the
// coordinator's list and this worker's own reported misses). Groups left empty
// are dropped; group order is kept.
std::vector<GroupReadSet> ReadSetOf(const v1::ShardRoute& route,
                                    const std::function<bool(const std::string&)>& failed,
                                    const std::function<bool(const std::string&)>& excluded);

// The read set used when exclusions empty every group of ReadSetOf (a shard pass
// repairs every node of the shard: a worker's session ended with misses possibly
// unreported, so which node missed what is unknown): every node of the read set
// minus failed ones, all groups as one set named "*". An acknowledged write
// reached some group's quorum, so the highest answer of all of them holds it
// when every one answers: the read then needs them all (QuorumRead with rf =
// 2 * nodes), and anything less is no answer. Empty `nodes` when none is left.
GroupReadSet WholeShardReadSet(const v1::ShardRoute& route,
                               const std::function<bool(const std::string&)>& failed);

// Answers a read of one group needs: q = floor(rf/2)+1, or every node of the
// group's read set when it has fewer.
uint32_t ReadQuorum(uint32_t rf, size_t read_set_size);

// One node's answer to a point read: the stored entry (document or tombstone),
// or nullopt when the node holds nothing for the key.
struct ReadAnswer {
  std::string node;
  std::optional<StoredDoc> doc;
};

// Whether a node's answer is newer than another's: a missing entry is older than
// any version; versions compare as (hlc, writer).
bool NewerAnswer(const ReadAnswer& a, const ReadAnswer& b);

// A stored entry a client sees as a document: not a tombstone, not expired at
// `now_ms`.
bool IsLiveDoc(const StoredDoc& doc, int64_t now_ms);

struct ReadOutcome {
  enum class Kind {
    kQuorum,   // a group's quorum answered: `answer` is the highest among them
    kPartial,  // no group reached its quorum; `answer` is the highest of every answer
    kStale,    // answers came, none at or above after_version
    kNone,     // no node answered
  };
  Kind kind = Kind::kNone;
  ReadAnswer answer;
  bool fenced = false;  // some node refused the read's epoch (refresh the view)
};

// Reads one key: for each group in order, asks its read set's nodes in order
// until ReadQuorum answers came; the first group that gets them and whose
// highest answer is at or above `after_version` (0: any) decides. `read_node`
// returns the node's entry, nullopt for none, FAILED_PRECONDITION when fenced,
// any other error when it cannot answer.
ReadOutcome QuorumRead(
    const std::vector<GroupReadSet>& groups, uint32_t rf, uint64_t after_version,
    const std::function<absl::StatusOr<std::optional<StoredDoc>>(const std::string&)>& read_node);

}  // namespace miroir

#endif  // MIROIR_WORKER_READ_SET_H_
