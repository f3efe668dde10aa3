#include "coordinator/etcd_status.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "spdlog/spdlog.h"

namespace miroir::coordinator {

void AddEtcdStatus(EtcdClient* client, const EtcdLayout& layout, v1::GetStatusResponse* resp) {
  resp->set_state_backend("etcd");
  // Bounded (kEtcdStatusProbe); the endpoints probed in parallel.
  const absl::Duration probe = std::min(client->request_timeout(), kEtcdStatusProbe);
  const std::vector<std::string>& endpoints = client->endpoints();
  std::vector<v1::EtcdEndpointHealth> health(endpoints.size());
  std::vector<std::thread> askers;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    askers.emplace_back([client, &endpoints, &health, i, probe] {
      v1::EtcdEndpointHealth& h = health[i];
      h.set_endpoint(endpoints[i]);
      auto st = client->EndpointStatus(endpoints[i], probe);
      if (!st.ok()) {
        h.set_error(std::string(st.status().message()));
        return;
      }
      h.set_healthy(true);
      h.set_version(st->version());
      h.set_is_leader(st->leader() != 0 && st->leader() == st->header().member_id());
      h.set_raft_term(st->raftterm());
      h.set_db_size(st->dbsize());
    });
  }
  std::string leader_address;
  etcdserverpb::RangeRequest lreq;
  lreq.set_key(layout.LeaderKey());
  auto l = client->Range(lreq, probe);
  if (l.ok() && l->kvs_size() == 1) {
    leader_address = l->kvs(0).value();
    resp->set_leader(leader_address);
    resp->set_term(l->kvs(0).create_revision());
  } else {
    resp->set_leader("");  // between leaders (or etcd unreachable)
    resp->set_term(0);
  }
  etcdserverpb::RangeRequest mreq;
  mreq.set_key(layout.MembersPrefix());
  mreq.set_range_end(EtcdLayout::RangeEnd(layout.MembersPrefix()));
  // Unread when the leader key was (etcd unreachable: it would wait as long).
  absl::StatusOr<etcdserverpb::RangeResponse> m =
      l.ok() ? client->Range(mreq, probe) : absl::StatusOr<etcdserverpb::RangeResponse>(l.status());
  if (m.ok()) {
    for (const auto& kv : m->kvs()) {
      v1::CoordinatorMember member;
      if (!member.ParseFromString(kv.value())) continue;
      member.set_leader(member.address() == leader_address);
      *resp->add_coordinators() = std::move(member);
    }
  } else {
    spdlog::warn("status: etcd members unreadable: {}", m.status().ToString());
  }
  for (std::thread& t : askers) t.join();
  for (auto& h : health) *resp->add_etcd() = std::move(h);
}

}  // namespace miroir::coordinator
