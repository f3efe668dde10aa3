#include "harness/fleet.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <algorithm>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/grpc_server.h"
#include "harness/ports.h"
#include "harness/temp_dir.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

constexpr absl::Duration kRpcTimeout = absl::Seconds(5);

void SetDeadline(grpc::ClientContext* ctx, absl::Duration d = kRpcTimeout) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(d)));
}

absl::Status Rpc(const grpc::Status& s) { return FromGrpc(s); }

void Sleep(absl::Duration d) { std::this_thread::sleep_for(absl::ToChronoMilliseconds(d)); }

}  // namespace

YAML::Node DefaultCoordinatorConfig() {
  YAML::Node c;
  c["worker_lease_ttl"] = "2s";
  c["max_clock_drift"] = "200ms";
  YAML::Node m;
  m["drain_timeout"] = "500ms";
  m["max_write_stall"] = "2s";
  m["catch_up_threshold"] = 200;
  m["catch_up_max"] = "30s";
  m["retain_moved_shard"] = "0s";
  c["migration"] = m;
  YAML::Node ae;
  ae["enabled"] = true;
  c["anti_entropy"] = ae;
  return c;
}

YAML::Node EtcdCoordinatorConfig() {
  YAML::Node c = DefaultCoordinatorConfig();
  c["worker_lease_ttl"] = "10s";
  return c;
}

absl::Status DeposedLeaderCommittedNothing(const std::string& log_after_resume) {
  if (log_after_resume.find("etcd leadership lost") == std::string::npos) {
    return absl::FailedPreconditionError("no \"etcd leadership lost\" in:\n" + log_after_resume);
  }
  for (const char* committed : {" -> ", " leased to ", " released from ", " created: "}) {
    if (log_after_resume.find(committed) != std::string::npos) {
      return absl::FailedPreconditionError(
          absl::StrCat("the deposed leader acted (\"", committed, "\"):\n", log_after_resume));
    }
  }
  return absl::OkStatus();
}

bool PlanEnded(pb::PlanState state) {
  return state == pb::PLAN_DONE || state == pb::PLAN_FAILED || state == pb::PLAN_ABORTED;
}

std::string NodeInfo::advertised_address() const {
  return proxy != nullptr ? proxy->address() : redis->address();
}

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Start(const std::string& dir, FleetOptions options) {
  std::unique_ptr<Fleet> fleet(new Fleet(dir, std::move(options)));
  if (fleet->options_.store_acl) {
    absl::BitGen gen;
    fleet->store_password_ =
        absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
    const std::string path = dir + "/store.password";
    if (!WriteFile(path, fleet->store_password_ + "\n") || chmod(path.c_str(), 0600) != 0) {
      return absl::InternalError("cannot write " + path);
    }
  }
  if (absl::Status s = fleet->StartNodes(); !s.ok()) return s;
  if (fleet->ha()) {
    auto etcd = EtcdCluster::Start(dir, fleet->options_.etcd_members);
    if (!etcd.ok()) return etcd.status();
    fleet->etcd_ = std::move(*etcd);
  }
  if (absl::Status s = fleet->WriteCoordinatorConfig(fleet->options_.coordinator_config); !s.ok()) {
    return s;
  }
  fleet->coordinators_.resize(fleet->ha() ? fleet->options_.etcd_coordinators : 1);
  for (int i = 0; i < fleet->coordinator_count(); ++i) {
    if (absl::Status s = fleet->LaunchCoordinator(i); !s.ok()) return s;
  }
  if (fleet->ha()) {
    // Workers start once one leads: a worker that starts while none answers
    // serves no writes until its session finds one (DESIGN §9a).
    if (auto l = fleet->WaitForLeader(fleet->options_.start_timeout); !l.ok()) return l.status();
  }
  const int n = fleet->options_.workers;
  for (int i = 0; i < n; ++i) {
    int64_t offset = i < static_cast<int>(fleet->options_.worker_clock_offsets_ms.size())
                         ? fleet->options_.worker_clock_offsets_ms[i]
                         : 0;
    fleet->workers_.emplace_back();
    fleet->workers_.back().clock_offset_ms = offset;
    if (absl::Status s = fleet->LaunchWorker(fleet->workers_.back(), i); !s.ok()) return s;
  }
  if (fleet->options_.init) {
    if (absl::Status s = fleet->InitCluster(); !s.ok()) return s;
    if (absl::Status s = fleet->WaitForWorkers(n, fleet->options_.start_timeout); !s.ok()) {
      return s;
    }
  }
  return fleet;
}

Fleet::~Fleet() {
  for (auto& w : workers_) {
    if (w.process) w.process->Terminate(absl::Seconds(3));
  }
  // Standbys first, so that no standby takes over from a leader going away.
  for (int i = 0; i < coordinator_count(); ++i) {
    if (i != leader_ && coordinators_[i].process)
      coordinators_[i].process->Terminate(absl::Seconds(3));
  }
  if (leader_ < coordinator_count() && coordinators_[leader_].process) {
    coordinators_[leader_].process->Terminate(absl::Seconds(3));
  }
  for (auto& [id, n] : nodes_) {
    n.proxy.reset();
    if (n.redis) (void)n.redis->Kill();
  }
  etcd_.reset();
}

absl::Status Fleet::StartNodes() {
  int next = 0;
  for (size_t g = 0; g < options_.group_sizes.size(); ++g) {
    for (int k = 0; k < options_.group_sizes[g]; ++k) {
      std::string id = absl::StrCat("r", next++);
      if (absl::Status s = StartNode(id, absl::StrCat("g", g), options_.proxied_nodes.count(id));
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Fleet::StartNode(const std::string& id, const std::string& group, bool proxied) {
  if (nodes_.count(id)) return absl::AlreadyExistsError(absl::StrCat("node ", id));
  std::optional<RedisAcl> acl;
  if (options_.store_acl) acl = RedisAcl{"miroir", store_password_};
  auto redis = RedisNode::Start(absl::StrCat(dir_, "/nodes/", id), 0, acl);
  if (!redis.ok()) return redis.status();
  NodeInfo info;
  info.id = id;
  info.group = group;
  info.redis = std::move(*redis);
  if (proxied) {
    auto proxy = TcpProxy::Start(info.redis->port());
    if (!proxy.ok()) return proxy.status();
    info.proxy = std::move(*proxy);
    if (acl) RegisterRedisAcl(info.advertised_address(), *acl);
  }
  node_order_.push_back(id);
  nodes_.emplace(id, std::move(info));
  return absl::OkStatus();
}

std::vector<std::string> Fleet::node_ids() const { return node_order_; }

NodeInfo& Fleet::node(const std::string& id) { return nodes_.at(id); }

absl::StatusOr<std::string> Fleet::AddNodeProcess(const std::string& id, const std::string& group,
                                                  bool proxied) {
  if (absl::Status s = StartNode(id, group, proxied); !s.ok()) return s;
  spare_nodes_.insert(id);
  return nodes_.at(id).advertised_address();
}

std::string Fleet::FleetYaml() const {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq;
  std::vector<std::string> groups;
  for (const auto& id : node_order_) {
    const NodeInfo& n = nodes_.at(id);
    if (spare_nodes_.count(id)) continue;
    if (std::find(groups.begin(), groups.end(), n.group) == groups.end()) groups.push_back(n.group);
  }
  for (const auto& g : groups) {
    out << YAML::BeginMap << YAML::Key << "id" << YAML::Value << g;
    out << YAML::Key << "nodes" << YAML::Value << YAML::BeginSeq;
    for (const auto& id : node_order_) {
      const NodeInfo& n = nodes_.at(id);
      if (n.group != g || spare_nodes_.count(id)) continue;
      out << YAML::Flow << YAML::BeginMap << YAML::Key << "id" << YAML::Value << id << YAML::Key
          << "address" << YAML::Value << n.advertised_address() << YAML::Key << "store"
          << YAML::Value << "redis" << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::Key << "indexes" << YAML::Value << YAML::BeginSeq;
  for (const auto& ix : options_.indexes) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << ix.name
        << YAML::Key << "shards" << YAML::Value << ix.shards << YAML::Key << "rf" << YAML::Value
        << ix.rf << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

absl::Status Fleet::WriteCoordinatorConfig(const YAML::Node& config) {
  YAML::Node written = config;
  if (ha()) {
    written = YAML::Clone(config);
    YAML::Node endpoints(YAML::NodeType::Sequence);
    for (const auto& e : etcd_->endpoints()) endpoints.push_back(e);
    written["state"]["backend"] = "etcd";
    written["state"]["etcd"]["endpoints"] = endpoints;
    for (const auto& [key, value] :
         std::vector<std::pair<std::string, std::string>>{{"prefix", "/fleet"},
                                                          {"lease_ttl", "2s"},
                                                          {"dial_timeout", "2s"},
                                                          {"request_timeout", "2s"}}) {
      if (!written["state"]["etcd"][key]) written["state"]["etcd"][key] = value;
    }
  }
  YAML::Emitter out;
  out << written;
  if (!WriteFile(dir_ + "/coordinator.yaml", std::string(out.c_str()) + "\n")) {
    return absl::InternalError("cannot write coordinator.yaml");
  }
  return absl::OkStatus();
}

std::string Fleet::coordinator_address(int i) const {
  return LoopbackAddress(coordinators_[i].port);
}

std::string Fleet::coordinator_list() const {
  if (!ha()) return coordinator_address();
  std::vector<std::string> all;
  for (int i = 0; i < coordinator_count(); ++i) all.push_back(coordinator_address(i));
  return absl::StrJoin(all, ",");
}

absl::Status Fleet::StartCoordinatorWith(const std::vector<std::string>& flags) {
  return LaunchCoordinator(leader_, flags);
}

absl::Status Fleet::LaunchCoordinator(int i, const std::vector<std::string>& extra_flags) {
  CoordinatorProc& c = coordinators_[i];
  // Without etcd the one coordinator keeps the names it always had.
  const std::string name = ha() ? absl::StrCat("coordinator", i) : "coordinator";
  std::string port_file = absl::StrCat(dir_, "/", name, ".port");
  RemoveAll(port_file);
  ProcessOptions opts;
  opts.binary = MIROIR_COORDINATOR_BIN;
  opts.log_path = absl::StrCat(dir_, "/", name, ".log");
  opts.args = {
      "--listen",    LoopbackAddress(c.port),
      "--port-file", port_file,
      "--data-dir",  ha() ? absl::StrCat(dir_, "/", name, "-data") : coordinator_data_dir(),
      "--config",    dir_ + "/coordinator.yaml"};
  for (const auto& f : options_.coordinator_flags) opts.args.push_back(f);
  for (const auto& f : extra_flags) opts.args.push_back(f);
  c.stopped = false;
  // The port may linger in the kernel after a SIGKILL: bounded retries.
  absl::Status last;
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto p = Process::Start(opts);
    if (!p.ok()) return p.status();
    c.process = std::move(*p);
    // With etcd the port file is written as a standby, before any campaign.
    auto port = WaitForPortFile(port_file, options_.start_timeout, c.process.get());
    if (port.ok()) {
      c.port = *port;
      c.stub = pb::Coordinator::NewStub(MakeChannel(coordinator_address(i)));
      return absl::OkStatus();
    }
    last = port.status();
    if (c.port == 0) break;  // not a port clash
    Sleep(absl::Milliseconds(200));
  }
  return absl::Status(last.code(), absl::StrCat("miroir-", name, ": ", last.message()));
}

absl::Status Fleet::KillCoordinator(int i) { return coordinators_[i].process->Kill(); }

absl::Status Fleet::StopCoordinator(int i) {
  coordinators_[i].stopped = true;
  return coordinators_[i].process->Stop();
}

absl::Status Fleet::ContCoordinator(int i) {
  coordinators_[i].stopped = false;
  return coordinators_[i].process->Cont();
}

absl::Status Fleet::RestartCoordinator(int i) {
  if (absl::Status s = coordinators_[i].process->Kill(); !s.ok()) return s;
  return LaunchCoordinator(i);
}

int Fleet::FindLeaderOnce(int except, std::string* why) {
  std::vector<int> leading;
  std::vector<std::string> answers;
  for (int i = 0; i < coordinator_count(); ++i) {
    CoordinatorProc& c = coordinators_[i];
    if (i == except || c.stopped || !c.process || !c.process->Running()) continue;
    pb::GetStatusResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(1));
    absl::Status s = Rpc(c.stub->GetStatus(&ctx, pb::GetStatusRequest(), &resp));
    // Standbys answer GetStatus too (from their copy of the model), naming the
    // leader: the leader is the one that names itself.
    const bool leads = s.ok() && resp.leader() == coordinator_address(i);
    if (leads) leading.push_back(i);
    answers.push_back(absl::StrCat(
        "coordinator", i, ": ",
        leads ? "leads"
              : (s.ok() ? absl::StrCat("standby (leader ", resp.leader(), ")") : s.ToString())));
  }
  if (why != nullptr) *why = absl::StrJoin(answers, "; ");
  return leading.size() == 1 ? leading[0] : -1;
}

absl::StatusOr<int> Fleet::WaitForLeader(absl::Duration timeout, int except) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string why = "not asked";
  while (absl::Now() < deadline) {
    const int i = FindLeaderOnce(except, &why);
    if (i >= 0) {
      leader_ = i;
      return i;
    }
    Sleep(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no single coordinator leads after ", absl::FormatDuration(timeout), ": ", why));
}

void Fleet::FollowLeaderAfter(const absl::Status& failed) {
  if (!ha() || failed.ok()) return;
  if (const int i = FindLeaderOnce(-1, nullptr); i >= 0) leader_ = i;
}

absl::StatusOr<int> Fleet::KillLeader() {
  const int i = leader_;
  if (absl::Status s = KillCoordinator(i); !s.ok()) return s;
  return i;
}

absl::StatusOr<int> Fleet::StopLeader() {
  const int i = leader_;
  if (absl::Status s = StopCoordinator(i); !s.ok()) return s;
  return i;
}

absl::Status Fleet::LaunchWorker(WorkerProc& w, int index) {
  ++w.starts;
  std::string port_file = absl::StrCat(dir_, "/worker", index, ".port");
  RemoveAll(port_file);
  ProcessOptions opts;
  opts.binary = MIROIR_WORKER_BIN;
  opts.log_path = absl::StrCat(dir_, "/worker", index, ".log");
  opts.args = {"--listen",      LoopbackAddress(w.port),
               "--port-file",   port_file,
               "--coordinator", w.coordinator.empty() ? coordinator_list() : w.coordinator};
  if (w.clock_offset_ms != 0) {
    opts.args.push_back("--clock-offset-ms");
    opts.args.push_back(absl::StrCat(w.clock_offset_ms));
  }
  for (const auto& f : options_.worker_flags) opts.args.push_back(f);
  auto pc = options_.per_worker_config.find(index);
  if (pc != options_.per_worker_config.end() || options_.store_acl) {
    YAML::Node cfg = pc != options_.per_worker_config.end() ? YAML::Load(pc->second) : YAML::Node();
    if (options_.store_acl) {
      cfg["store"]["username"] = "miroir";
      cfg["store"]["password_file"] = dir_ + "/store.password";
    }
    YAML::Emitter out;
    out << cfg;
    std::string path = absl::StrCat(dir_, "/worker", index, ".yaml");
    if (!WriteFile(path, std::string(out.c_str()) + "\n")) {
      return absl::InternalError("cannot write " + path);
    }
    opts.args.push_back("--config");
    opts.args.push_back(std::move(path));
  }
  if (auto pw = options_.per_worker_flags.find(index); pw != options_.per_worker_flags.end()) {
    for (const auto& f : pw->second) opts.args.push_back(f);
  }
  absl::Status last;
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto p = Process::Start(opts);
    if (!p.ok()) return p.status();
    w.process = std::move(*p);
    auto port = WaitForPortFile(port_file, options_.start_timeout, w.process.get());
    if (port.ok()) {
      w.port = *port;
      w.stub = pb::DataPlane::NewStub(MakeChannel(LoopbackAddress(w.port)));
      return absl::OkStatus();
    }
    last = port.status();
    if (w.port == 0) break;
    Sleep(absl::Milliseconds(200));
  }
  return absl::Status(last.code(), absl::StrCat("miroir-worker ", index, ": ", last.message()));
}

std::string Fleet::worker_address(int i) const { return LoopbackAddress(workers_[i].port); }

std::vector<std::string> Fleet::worker_addresses() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < workers_.size(); ++i) out.push_back(worker_address(i));
  return out;
}

absl::Status Fleet::KillWorker(int i) { return workers_[i].process->Kill(); }

absl::Status Fleet::RestartWorker(int i) {
  if (absl::Status s = workers_[i].process->Kill(); !s.ok()) return s;
  return LaunchWorker(workers_[i], i);
}

absl::StatusOr<int> Fleet::AddWorker(int64_t clock_offset_ms, const std::string& coordinator) {
  workers_.emplace_back();
  workers_.back().clock_offset_ms = clock_offset_ms;
  workers_.back().coordinator = coordinator;
  int i = static_cast<int>(workers_.size()) - 1;
  if (absl::Status s = LaunchWorker(workers_.back(), i); !s.ok()) return s;
  return i;
}

absl::Status Fleet::InitCluster() {
  pb::InitClusterRequest req;
  req.set_fleet_yaml(FleetYaml());
  req.set_source_name("fleet.yaml");
  WriteFile(dir_ + "/fleet.yaml", req.fleet_yaml());
  // The coordinator may still be opening its store: retry UNAVAILABLE briefly.
  absl::Status last;
  for (int attempt = 0; attempt < 50; ++attempt) {
    pb::InitClusterResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    last = Rpc(coord().InitCluster(&ctx, req, &resp));
    if (last.code() != absl::StatusCode::kUnavailable) break;
    if (!coordinator()->Running()) break;
    Sleep(absl::Milliseconds(100));
  }
  if (!last.ok()) {
    return absl::Status(last.code(), absl::StrCat("InitCluster: ", last.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<pb::GetStatusResponse> Fleet::Status() {
  pb::GetStatusResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  absl::Status s = Rpc(coord().GetStatus(&ctx, pb::GetStatusRequest(), &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::Status Fleet::WaitForWorkers(int n, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::string last = "no answer";
  while (absl::Now() < deadline) {
    auto st = Status();
    if (st.ok()) {
      int ready = 0;
      for (const auto& w : st->workers()) {
        if (w.acked_epoch() >= st->epoch()) ++ready;
      }
      if (ready >= n) return absl::OkStatus();
      last = absl::StrCat(ready, " of ", n, " workers registered at epoch ", st->epoch());
    } else {
      last = st.status().ToString();
      FollowLeaderAfter(st.status());
    }
    Sleep(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("workers not ready: ", last));
}

absl::StatusOr<RunResult> Fleet::Ctl(const std::vector<std::string>& args, absl::Duration timeout) {
  std::vector<std::string> full = {"--coordinator", coordinator_list()};
  full.insert(full.end(), args.begin(), args.end());
  return RunToCompletion(MIROIR_CTL_BIN, full, dir_, timeout);
}

absl::StatusOr<pb::Plan> Fleet::CreatePlan(const pb::CreatePlanRequest& request) {
  pb::CreatePlanResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(15));
  absl::Status s = Rpc(coord().CreatePlan(&ctx, request, &resp));
  if (!s.ok()) return s;
  return resp.plan();
}

absl::StatusOr<pb::GetPlanResponse> Fleet::GetPlan(uint64_t id) {
  pb::GetPlanRequest req;
  req.set_id(id);
  pb::GetPlanResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  absl::Status s = Rpc(coord().GetPlan(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<pb::Plan> Fleet::UpdatePlan(const pb::UpdatePlanRequest& request,
                                           absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    pb::GetPlanResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(5));
    absl::Status s = Rpc(coord().UpdatePlan(&ctx, request, &resp));
    if (s.ok()) return resp.plan();
    if (!ha() || absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s) ||
        absl::Now() >= deadline) {
      return s;
    }
    (void)WaitForLeader(std::min(absl::Seconds(5), deadline - absl::Now()));
    Sleep(absl::Milliseconds(200));
  }
}

absl::StatusOr<pb::Plan> Fleet::WaitForPlanEnd(uint64_t id, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<pb::GetPlanResponse> last = absl::UnknownError("not asked");
  while (absl::Now() < deadline) {
    last = GetPlan(id);
    if (last.ok() && PlanEnded(last->plan().state())) return last->plan();
    if (!last.ok()) FollowLeaderAfter(last.status());
    Sleep(absl::Milliseconds(50));
  }
  std::string where =
      last.ok() ? pb::PlanState_Name(last->plan().state()) : last.status().ToString();
  if (last.ok()) {
    std::map<std::string, int> states;
    std::string note;
    for (const auto& m : last->plan().moves()) {
      ++states[pb::MoveState_Name(m.state())];
      if (note.empty() && !m.message().empty()) {
        note = absl::StrCat("; shard ", m.shard(), ": ", m.message());
      }
    }
    for (const auto& [name, n] : states) absl::StrAppend(&where, " ", name, "=", n);
    absl::StrAppend(&where, note);
  }
  return absl::DeadlineExceededError(
      absl::StrCat("plan ", id, " still ", where, " after ", absl::FormatDuration(timeout)));
}

absl::StatusOr<pb::Plan> Fleet::WaitForMoveState(uint64_t id, pb::MoveState state,
                                                 absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto r = GetPlan(id);
    if (r.ok()) {
      for (const auto& m : r->plan().moves()) {
        if (m.state() == state) return r->plan();
      }
      if (PlanEnded(r->plan().state())) {
        return absl::FailedPreconditionError(
            absl::StrCat("plan ", id, " ended ", pb::PlanState_Name(r->plan().state()),
                         " before any move was ", pb::MoveState_Name(state)));
      }
    } else {
      FollowLeaderAfter(r.status());
    }
    Sleep(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no move of plan ", id, " reached ", pb::MoveState_Name(state)));
}

absl::Status Fleet::WaitQuiescent(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::string last = "no answer";
  while (absl::Now() < deadline) {
    auto st = Status();
    if (st.ok()) {
      bool running = false;
      for (const auto& p : st->plans()) running |= !PlanEnded(p.state());
      if (!running && st->pending_recovery_passes() == 0) return absl::OkStatus();
      last = absl::StrCat(st->plans_size(), " plans open, ", st->pending_recovery_passes(),
                          " recovery passes pending");
    } else {
      last = st.status().ToString();
      FollowLeaderAfter(st.status());
    }
    Sleep(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("not quiescent: ", last));
}

CheckOptions Fleet::CheckOptionsFor(const std::string& index) {
  CheckOptions c;
  c.coordinator = &coord();
  c.coordinator_address = coordinator_address();
  c.index = index;
  for (const auto& [id, n] : nodes_) c.address_override[id] = n.redis->address();
  return c;
}

WriterOptions Fleet::WriterOptionsFor(const std::string& index) const {
  WriterOptions w;
  w.index = index;
  w.worker_addresses = worker_addresses();
  return w;
}

absl::StatusOr<std::map<std::string, pb::GetIndexResponse>> Fleet::Indexes() {
  auto st = Status();
  if (!st.ok()) return st.status();
  std::map<std::string, pb::GetIndexResponse> out;
  for (const auto& name : st->indexes()) {
    pb::GetIndexRequest req;
    req.set_name(name);
    pb::GetIndexResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    absl::Status s = Rpc(coord().GetIndex(&ctx, req, &resp));
    if (!s.ok()) return s;
    out[name] = std::move(resp);
  }
  return out;
}

}  // namespace miroir::testing
