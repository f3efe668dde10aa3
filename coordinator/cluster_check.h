// The judgement of `miroir-ctl check` (Coordinator::CheckCluster): pure, no I/O.
// The coordinator gathers a ClusterCheckInput from its state and the workers'
// last node reports; JudgeCluster turns it into findings, like Kudu's ksck.
// What it cannot see (fences or keys left on the store nodes, anything between
// node reports) is listed in docs/operations.md ("What check does not see").
#ifndef MIROIR_COORDINATOR_CLUSTER_CHECK_H_
#define MIROIR_COORDINATOR_CLUSTER_CHECK_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "coordinator/move_gates.h"
#include "coordinator/worker_registry.h"
#include "miroir/v1/coordinator.pb.h"
#include "miroir/v1/reshard.pb.h"

namespace miroir::coordinator {

// The store settings the data promise rests on (DESIGN §4): every acknowledged
// write is fsynced before the node answers, and nothing is evicted.
// Setting name -> required value (redis CONFIG names).
const std::map<std::string, std::string>& RequiredDurabilityConfig();

struct ClusterCheckInput {
  int64_t now_ms = 0;
  // A node report older than this is stale (its node's health is unknown).
  int64_t report_stale_ms = 15000;
  uint64_t epoch = 0;
  std::vector<v1::Node> nodes;
  std::map<std::string, NodeHealth> health;        // by node id
  std::vector<WorkerSnapshot> workers;             // live workers
  std::vector<v1::Plan> plans;                     // every plan, with its moves
  std::vector<v1::ReshardRecord> reshards;         // every reshard
  std::vector<v1::GenerationRoute> generations;    // index, generation, role (routes unused)
  std::map<std::string, uint64_t> pending_passes;  // node -> pending recovery passes
  uint64_t recovery_passes = 0;                    // pending recovery passes (tasks)
};

// Every finding, errors first; healthy when none is an error. Checks: workers
// live and acked at `epoch`; each node not removed reported recently, reachable
// and configured as RequiredDurabilityConfig (a failed node is one finding, its
// store is not judged); no node joining or leaving without an unfinished plan;
// failed plans and reshards not followed by a done one for the same subject; moves
// of ended plans left unfinished; shadow or retained generations without an
// unfinished reshard; pending recovery passes per node. A paused plan and a store
// whose settings were not read are warnings.
v1::CheckClusterResponse JudgeCluster(const ClusterCheckInput& in);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_CLUSTER_CHECK_H_
