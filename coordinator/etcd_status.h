// The etcd part of GetStatus (DESIGN §9, issue "HA control plane"): the
// leader's term, every coordinator registered under PREFIX/members/ and each
// etcd endpoint's health as this coordinator sees it.
#ifndef MIROIR_COORDINATOR_ETCD_STATUS_H_
#define MIROIR_COORDINATOR_ETCD_STATUS_H_

#include <cstdint>

#include "coordinator/etcd_client.h"
#include "coordinator/etcd_layout.h"
#include "miroir/v1/coordinator.pb.h"

namespace miroir::coordinator {

// Fills state_backend, leader and term (from the leader key: its value and
// create revision), coordinators and etcd of `resp`. Endpoints are asked in
// parallel; every call within kEtcdStatusProbe (so a status answers in about a
// second while etcd has no quorum); an endpoint that does not answer is listed
// unhealthy with the error.
void AddEtcdStatus(EtcdClient* client, const EtcdLayout& layout, v1::GetStatusResponse* resp);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_ETCD_STATUS_H_
