// EtcdClient: the coordinator's narrow door to etcd's v3 gRPC API (KV, Txn,
// Lease, Watch). One channel over every endpoint (gRPC fails over between
// them), plaintext or TLS (state.etcd.tls); every unary call has the request
// timeout as its deadline.
//
// Thread-safe: gRPC stubs are.
#ifndef MIROIR_COORDINATOR_ETCD_CLIENT_H_
#define MIROIR_COORDINATOR_ETCD_CLIENT_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace miroir::coordinator {

// Each etcd call of a GetStatus (health probes, the leader key, the members,
// the audit log) is bounded by this, or request_timeout if shorter: a status
// answers in about a second while etcd has no quorum, when an operator asks
// (miroir-ctl probes every coordinator for at most 2 s).
inline constexpr absl::Duration kEtcdStatusProbe = absl::Milliseconds(800);

class EtcdClient {
 public:
  // Connects to `endpoints` (HOST:PORT each) and waits up to `dial_timeout`
  // for one to answer. Every channel is TLS when `tls` names a file (client
  // certificate with cert+key), the members' certificates checked against
  // `tls_server_name`, or each endpoint's host when empty. UNAVAILABLE naming
  // the endpoints when none answers (a refused TLS handshake looks the same);
  // INVALID_ARGUMENT naming state.etcd.tls.* for an unreadable file.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Connect(
      const std::vector<std::string>& endpoints, absl::Duration dial_timeout,
      absl::Duration request_timeout, const TlsFiles& tls = {},
      const std::string& tls_server_name = "");

  const std::string& endpoints_text() const { return endpoints_text_; }
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  absl::Duration request_timeout() const { return request_timeout_; }

  // `timeout` (0: request_timeout) bounds one call, e.g. a status probe's.
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& req,
                                                    absl::Duration timeout = absl::ZeroDuration());
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& req);
  absl::StatusOr<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& req);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRange(
      const etcdserverpb::DeleteRangeRequest& req);
  // Grants a lease of `ttl_s` seconds; returns its id.
  absl::StatusOr<int64_t> LeaseGrant(int64_t ttl_s);
  absl::Status LeaseRevoke(int64_t id);
  // Maintenance.Status of one member (one of `endpoints()`; NOT_FOUND for
  // another), on a channel to that endpoint alone, made once at Connect.
  absl::StatusOr<etcdserverpb::StatusResponse> EndpointStatus(
      const std::string& endpoint, absl::Duration timeout = absl::ZeroDuration());

  // For the keep-alive stream: the caller owns the context.
  etcdserverpb::Lease::Stub* lease() { return lease_.get(); }
  // Runs one Watch stream for `create` on `ctx` (the caller stops it with
  // ctx->TryCancel()): `on_response` sees every answer, the creation's first,
  // until it returns false, the stream ends, or etcd cancels the watch or
  // reports a compaction. The stream is finished when this returns.
  void Watch(grpc::ClientContext* ctx, const etcdserverpb::WatchCreateRequest& create,
             const std::function<bool(const etcdserverpb::WatchResponse&)>& on_response);

 private:
  EtcdClient() = default;
  std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::ZeroDuration()) const;

  std::vector<std::string> endpoints_;
  std::string endpoints_text_;
  absl::Duration request_timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch_;
  // Per endpoint, for EndpointStatus; fixed after Connect.
  std::map<std::string, std::unique_ptr<etcdserverpb::Maintenance::Stub>> maintenance_;
};

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_ETCD_CLIENT_H_
