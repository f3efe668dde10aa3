// Fleet: a whole miroir cluster on loopback for one test — redis-server store
// nodes in replica groups (optionally each behind a TcpProxy), the real
// miroir-coordinator with a YAML config the test customises, and K real
// miroir-workers — plus the operations tests need: cluster init, gRPC stubs,
// miroir-ctl runs, kill/restart of any process, a spare node for an add-node
// plan, and waits on plans and recovery passes.
//
// Contract with the programs (flags): coordinator
//   --listen 127.0.0.1:P --port-file F --data-dir D --config C
// worker
//   --listen 127.0.0.1:P --port-file F --coordinator 127.0.0.1:C [--clock-offset-ms N]
// (P = 0 at first start; a restart reuses the port it bound, so peers keep
// their addresses.)
//
// With FleetOptions::etcd_coordinators = N the control plane runs on etcd
// (DESIGN §9, docs/ha.md): a real EtcdCluster and N coordinators, one leading;
// workers and miroir-ctl get every coordinator (--coordinator a,b,c) and follow
// the leader; coord() and the helpers talk to the leader last found
// (WaitForLeader), and a test can kill, stop and restart any coordinator or
// etcd member.
//
// Thread-compatible: the test's main thread owns it; stubs are thread-safe.
#ifndef MIROIR_TESTS_HARNESS_FLEET_H_
#define MIROIR_TESTS_HARNESS_FLEET_H_

#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "harness/etcd_cluster.h"
#include "harness/process.h"
#include "harness/redis_node.h"
#include "harness/tcp_proxy.h"
#include "harness/test_writer.h"
#include "miroir/v1/coordinator.grpc.pb.h"
#include "miroir/v1/dataplane.grpc.pb.h"

namespace miroir::testing {

struct IndexSpec {
  std::string name = "products";
  uint32_t shards = 16;
  uint32_t rf = 1;
};

// The coordinator config the harness writes unless the test changes it: short
// leases and no retention, so moves and cleanup finish inside a test.
YAML::Node DefaultCoordinatorConfig();
// DefaultCoordinatorConfig with a worker lease a failover on etcd fits in
// (DESIGN §9a): worker_lease_ttl 10s for the etcd lease_ttl 2s the harness sets
// (2 x 2 s + 3.3 s < 10 s; the coordinator refuses a config where it does not fit).
YAML::Node EtcdCoordinatorConfig();

struct FleetOptions {
  // Nodes per group; groups are g0, g1, ...; nodes r0, r1, ... in order.
  std::vector<int> group_sizes = {2, 2};
  std::vector<IndexSpec> indexes = {IndexSpec{}};
  int workers = 2;
  // Test-only clock offset per worker (missing entries: 0).
  std::vector<int64_t> worker_clock_offsets_ms;
  // Node ids whose address in the fleet YAML is a TcpProxy in front of them.
  std::set<std::string> proxied_nodes;
  // Written as the coordinator's --config file.
  YAML::Node coordinator_config = DefaultCoordinatorConfig();
  // Extra flags per program.
  std::vector<std::string> coordinator_flags;
  std::vector<std::string> worker_flags;
  // Extra flags for one worker only (by index), after worker_flags; e.g. a
  // --config with its own max_tasks, or --metrics-listen.
  std::map<int, std::vector<std::string>> per_worker_flags;
  // A worker config file (YAML text) for one worker only (by index): written to
  // DIR/worker<i>.yaml and passed as its --config, e.g. "max_tasks: 0\n".
  std::map<int, std::string> per_worker_config;
  // Store credentials (DESIGN §13): every redis-server node runs with the
  // `default` user off and an ACL user `miroir` whose password is random per
  // fleet; every worker's config gets store.username and store.password_file
  // (DIR/store.password), and the harness's own node reads authenticate.
  bool store_acl = false;
  // The control plane on etcd: 0 runs the one coordinator on its SQLite file (as
  // always); N > 0 starts an EtcdCluster of `etcd_members` members (1 or 3) in DIR
  // and N coordinators with state.backend etcd (DIR/coordinator<i>.log, .port,
  // -data/). The harness adds state.backend and state.etcd.endpoints to
  // coordinator_config, and prefix /fleet, lease_ttl 2s, dial_timeout and
  // request_timeout 2s where the test set none: coordinator_config must then
  // carry a worker_lease_ttl the failover fits in (EtcdCoordinatorConfig()).
  int etcd_coordinators = 0;
  int etcd_members = 1;
  // Run InitCluster and wait for every worker to register.
  bool init = true;
  absl::Duration start_timeout = absl::Seconds(30);
};

struct NodeInfo {
  std::string id;
  std::string group;
  std::unique_ptr<RedisNode> redis;
  std::unique_ptr<TcpProxy> proxy;  // null unless proxied
  // What the fleet YAML names (the proxy's address when proxied).
  std::string advertised_address() const;
};

// A deposed leader's log from the moment it was resumed: OK when it says its
// etcd leadership was lost and holds no line that follows a commit (a move
// step, a task leased or released, a plan created); else what it did.
absl::Status DeposedLeaderCommittedNothing(const std::string& log_after_resume);

class Fleet {
 public:
  // Starts everything under `dir` (created; the test's TempDir). On error every
  // process started so far is stopped.
  static absl::StatusOr<std::unique_ptr<Fleet>> Start(const std::string& dir, FleetOptions options);
  // Stops workers, then the coordinators (standbys first), then the nodes, then
  // etcd; all reaped.
  ~Fleet();

  const FleetOptions& options() const { return options_; }
  const std::string& dir() const { return dir_; }
  // store_acl: the nodes' ACL password (in DIR/store.password); "" otherwise.
  const std::string& store_password() const { return store_password_; }

  // --- store nodes ---
  std::vector<std::string> node_ids() const;  // in start order
  NodeInfo& node(const std::string& id);      // REQUIRES: the id exists
  RedisNode& redis(const std::string& id) { return *node(id).redis; }
  bool has_node(const std::string& id) const { return nodes_.count(id) > 0; }
  // Starts a redis node that is not in the topology yet (for an add-node or
  // add-group plan); returns its advertised address.
  absl::StatusOr<std::string> AddNodeProcess(const std::string& id, const std::string& group,
                                             bool proxied = false);
  // The fleet YAML that InitCluster used (or will use).
  std::string FleetYaml() const;

  // --- coordinator ---
  // With etcd_coordinators, these act on the leader last found (leader()).
  Process* coordinator() { return coordinator(leader_); }
  std::string coordinator_address() const { return coordinator_address(leader_); }
  miroir::v1::Coordinator::Stub& coord() { return *coordinators_[leader_].stub; }
  absl::Status KillCoordinator() { return KillCoordinator(leader_); }
  absl::Status StopCoordinator() { return StopCoordinator(leader_); }
  absl::Status ContCoordinator() { return ContCoordinator(leader_); }
  // Starts it again on the same port with the same data dir and config.
  absl::Status RestartCoordinator() { return RestartCoordinator(leader_); }
  // Starts it (after KillCoordinator) on the same port and config with `flags`
  // added for this start only, e.g. {"--restore", FILE}.
  absl::Status StartCoordinatorWith(const std::vector<std::string>& flags);
  // Its --data-dir (the SQLite file lives there).
  std::string coordinator_data_dir() const { return dir_ + "/coordinator-data"; }
  // Rewrites the config file (takes effect at the next restart). With etcd, the
  // harness's state section is added as at the start.
  absl::Status WriteCoordinatorConfig(const YAML::Node& config);
  // What workers and miroir-ctl are given: every coordinator, comma-separated
  // (without etcd: coordinator_address()).
  std::string coordinator_list() const;

  // --- the control plane on etcd (etcd_coordinators > 0) ---
  // Without etcd there is one coordinator, index 0, always the leader.
  int coordinator_count() const { return static_cast<int>(coordinators_.size()); }
  Process* coordinator(int i) { return coordinators_[i].process.get(); }
  std::string coordinator_address(int i) const;
  miroir::v1::Coordinator::Stub& coord(int i) { return *coordinators_[i].stub; }
  // The coordinator coord() talks to: the leader last found.
  int leader() const { return leader_; }
  // Polls GetStatus on every running coordinator (not SIGSTOPped by the fleet,
  // not `except`) until exactly one answers OK — a standby answers UNAVAILABLE
  // naming the leader — and makes it the one coord() talks to; returns its index.
  // DEADLINE_EXCEEDED naming what each answered after `timeout`.
  absl::StatusOr<int> WaitForLeader(absl::Duration timeout = absl::Seconds(20), int except = -1);
  // SIGKILL / SIGSTOP the leader last found; return its index.
  absl::StatusOr<int> KillLeader();
  absl::StatusOr<int> StopLeader();
  absl::Status KillCoordinator(int i);
  absl::Status StopCoordinator(int i);  // SIGSTOP; WaitForLeader skips it until ContCoordinator
  absl::Status ContCoordinator(int i);
  // Starts coordinator i again (killed first if running) on its port, data dir
  // and config; with etcd it campaigns like any standby.
  absl::Status RestartCoordinator(int i);
  // The etcd members (null without etcd), e.g. to kill one.
  EtcdCluster* etcd() { return etcd_.get(); }

  // --- workers ---
  int worker_count() const { return static_cast<int>(workers_.size()); }
  Process* worker(int i) { return workers_[i].process.get(); }
  std::string worker_address(int i) const;
  std::vector<std::string> worker_addresses() const;
  miroir::v1::DataPlane::Stub& dataplane(int i) { return *workers_[i].stub; }
  absl::Status KillWorker(int i);
  absl::Status RestartWorker(int i);  // same port, same clock offset
  // Starts one more worker; returns its index. `coordinator` ("" = the fleet's)
  // is the address it is given, e.g. a TcpProxy in front of the coordinator so a
  // test can cut that one worker from it.
  absl::StatusOr<int> AddWorker(int64_t clock_offset_ms = 0, const std::string& coordinator = "");

  // --- cluster operations ---
  absl::Status InitCluster();
  // Waits until GetStatus lists at least `n` live workers that acked the
  // current epoch.
  absl::Status WaitForWorkers(int n, absl::Duration timeout = absl::Seconds(30));
  absl::StatusOr<miroir::v1::GetStatusResponse> Status();
  // Runs miroir-ctl with --coordinator set (coordinator_list()).
  absl::StatusOr<RunResult> Ctl(const std::vector<std::string>& args,
                                absl::Duration timeout = absl::Seconds(60));
  // Creates a plan through the API.
  absl::StatusOr<miroir::v1::Plan> CreatePlan(const miroir::v1::CreatePlanRequest& request);
  absl::StatusOr<miroir::v1::GetPlanResponse> GetPlan(uint64_t id);
  // UpdatePlan through the leader; with etcd it follows a leader change and
  // retries what could not be committed (UNAVAILABLE, DEADLINE_EXCEEDED) until
  // `timeout`. INVALID_ARGUMENT and FAILED_PRECONDITION are returned at once.
  absl::StatusOr<miroir::v1::Plan> UpdatePlan(const miroir::v1::UpdatePlanRequest& request,
                                              absl::Duration timeout = absl::Seconds(20));
  // Waits until the plan ends (done, failed or aborted) and returns it.
  absl::StatusOr<miroir::v1::Plan> WaitForPlanEnd(uint64_t id,
                                                  absl::Duration timeout = absl::Seconds(60));
  // Waits until some move of the plan is in `state` and returns the plan;
  // FAILED_PRECONDITION when the plan ends first.
  absl::StatusOr<miroir::v1::Plan> WaitForMoveState(uint64_t id, miroir::v1::MoveState state,
                                                    absl::Duration timeout = absl::Seconds(60));
  // Waits until no plan is running and no recovery pass is pending.
  absl::Status WaitQuiescent(absl::Duration timeout = absl::Seconds(60));
  // Options for CheckPromise on `index`: this coordinator, and every node read
  // at its redis address (past any proxy).
  CheckOptions CheckOptionsFor(const std::string& index = "products");
  // Options for a TestWriter on `index` over every worker.
  WriterOptions WriterOptionsFor(const std::string& index = "products") const;

  // The routing tables of every index (GetIndex), by index name.
  absl::StatusOr<std::map<std::string, miroir::v1::GetIndexResponse>> Indexes();

 private:
  struct WorkerProc {
    int port = 0;
    int64_t clock_offset_ms = 0;
    std::string coordinator;  // "" = coordinator_list()
    std::unique_ptr<Process> process;
    std::unique_ptr<miroir::v1::DataPlane::Stub> stub;
    int starts = 0;
  };
  Fleet(std::string dir, FleetOptions options)
      : dir_(std::move(dir)), options_(std::move(options)) {}
  absl::Status StartNodes();
  absl::Status StartNode(const std::string& id, const std::string& group, bool proxied);
  absl::Status LaunchCoordinator(int i, const std::vector<std::string>& extra_flags = {});
  absl::Status LaunchWorker(WorkerProc& w, int index);
  // One pass over the coordinators (see WaitForLeader): the index of the one that
  // answers OK, or -1 with what each answered in `why`.
  int FindLeaderOnce(int except, std::string* why);
  // With etcd, after a failed call: follow whichever coordinator leads now.
  void FollowLeaderAfter(const absl::Status& failed);
  bool ha() const { return options_.etcd_coordinators > 0; }

  std::string dir_;
  FleetOptions options_;
  std::string store_password_;  // store_acl: the ACL user's password
  std::vector<std::string> node_order_;
  std::map<std::string, NodeInfo> nodes_;
  std::set<std::string> spare_nodes_;  // started by AddNodeProcess, not in the fleet YAML
  struct CoordinatorProc {
    int port = 0;          // 0 until its first start bound one
    bool stopped = false;  // SIGSTOPped by the fleet
    std::unique_ptr<Process> process;
    std::unique_ptr<miroir::v1::Coordinator::Stub> stub;
  };
  std::unique_ptr<EtcdCluster> etcd_;          // etcd_coordinators > 0
  std::vector<CoordinatorProc> coordinators_;  // one without etcd
  int leader_ = 0;
  std::vector<WorkerProc> workers_;
};

// True for a plan state that will not change again.
bool PlanEnded(miroir::v1::PlanState state);

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_FLEET_H_
