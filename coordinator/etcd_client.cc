#include "coordinator/etcd_client.h"

#include <arpa/inet.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace miroir::coordinator {
namespace {

absl::Status FromGrpc(const grpc::Status& s, const std::string& what, const std::string& eps) {
  if (s.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(s.error_code());
  return absl::Status(code, absl::StrCat("etcd ", what, " (", eps, "): ", s.error_message()));
}

bool IsIpv4Endpoint(const std::string& ep) {
  const size_t colon = ep.rfind(':');
  if (colon == std::string::npos) return false;
  in_addr a;
  return inet_pton(AF_INET, ep.substr(0, colon).c_str(), &a) == 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Connect(
    const std::vector<std::string>& endpoints, absl::Duration dial_timeout,
    absl::Duration request_timeout, const TlsFiles& tls, const std::string& tls_server_name) {
  if (endpoints.empty()) return absl::InvalidArgumentError("state.etcd.endpoints: empty");
  auto creds = MakeChannelCredentials(tls, "state.etcd.tls.");
  if (!creds.ok()) return creds.status();
  std::unique_ptr<EtcdClient> c(new EtcdClient());
  c->endpoints_ = endpoints;
  c->endpoints_text_ = absl::StrJoin(endpoints, ",");
  c->request_timeout_ = request_timeout;
  bool all_ipv4 = true;
  for (const auto& ep : endpoints) all_ipv4 = all_ipv4 && IsIpv4Endpoint(ep);
  // gRPC's ipv4: scheme takes every member; pick_first moves to the next one
  // when the connected member goes away. A host name dials the first endpoint.
  const std::string target = all_ipv4 ? absl::StrCat("ipv4:", c->endpoints_text_)
                                      : absl::StrCat("dns:///", endpoints.front());
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // The name TLS checks: an ipv4: target over several members would offer the
  // whole list, so the server name, or the (one, by config validation) host.
  if (tls.enabled()) {
    args.SetSslTargetNameOverride(tls_server_name.empty() ? HostOf(endpoints.front())
                                                          : tls_server_name);
  }
  c->channel_ = grpc::CreateCustomChannel(target, *creds, args);
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoMilliseconds(dial_timeout);
  if (!c->channel_->WaitForConnected(deadline)) {
    return absl::UnavailableError(absl::StrCat(
        "state.etcd.endpoints: no etcd answered at ", c->endpoints_text_, " within ",
        absl::FormatDuration(dial_timeout),
        tls.enabled() ? " over TLS (a refused certificate looks the same: check state.etcd.tls "
                        "and the etcd member's log)"
                      : ""));
  }
  c->kv_ = etcdserverpb::KV::NewStub(c->channel_);
  c->lease_ = etcdserverpb::Lease::NewStub(c->channel_);
  c->watch_ = etcdserverpb::Watch::NewStub(c->channel_);
  // One channel per member for Maintenance.Status (the shared channel reaches
  // whichever member it is connected to); gRPC connects it at its first call.
  for (const auto& ep : endpoints) {
    grpc::ChannelArguments member_args;
    if (tls.enabled() && !tls_server_name.empty()) {
      member_args.SetSslTargetNameOverride(tls_server_name);
    }
    c->maintenance_[ep] = etcdserverpb::Maintenance::NewStub(grpc::CreateCustomChannel(
        IsIpv4Endpoint(ep) ? absl::StrCat("ipv4:", ep) : absl::StrCat("dns:///", ep), *creds,
        member_args));
  }
  return c;
}

std::unique_ptr<grpc::ClientContext> EtcdClient::Context(absl::Duration timeout) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(
      std::chrono::system_clock::now() +
      absl::ToChronoMilliseconds(timeout > absl::ZeroDuration() ? timeout : request_timeout_));
  ctx->set_wait_for_ready(false);
  return ctx;
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::Range(const etcdserverpb::RangeRequest& req,
                                                              absl::Duration timeout) {
  etcdserverpb::RangeResponse resp;
  auto ctx = Context(timeout);
  auto s = FromGrpc(kv_->Range(ctx.get(), req, &resp), "range", endpoints_text_);
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::Txn(const etcdserverpb::TxnRequest& req) {
  etcdserverpb::TxnResponse resp;
  auto ctx = Context();
  auto s = FromGrpc(kv_->Txn(ctx.get(), req, &resp), "txn", endpoints_text_);
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<etcdserverpb::PutResponse> EtcdClient::Put(const etcdserverpb::PutRequest& req) {
  etcdserverpb::PutResponse resp;
  auto ctx = Context();
  auto s = FromGrpc(kv_->Put(ctx.get(), req, &resp), "put", endpoints_text_);
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> EtcdClient::DeleteRange(
    const etcdserverpb::DeleteRangeRequest& req) {
  etcdserverpb::DeleteRangeResponse resp;
  auto ctx = Context();
  auto s = FromGrpc(kv_->DeleteRange(ctx.get(), req, &resp), "delete", endpoints_text_);
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<int64_t> EtcdClient::LeaseGrant(int64_t ttl_s) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl_s);
  etcdserverpb::LeaseGrantResponse resp;
  auto ctx = Context();
  auto s = FromGrpc(lease_->LeaseGrant(ctx.get(), req, &resp), "lease grant", endpoints_text_);
  if (!s.ok()) return s;
  if (!resp.error().empty()) {
    return absl::UnavailableError(absl::StrCat("etcd lease grant: ", resp.error()));
  }
  return resp.id();
}

absl::Status EtcdClient::LeaseRevoke(int64_t id) {
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(id);
  etcdserverpb::LeaseRevokeResponse resp;
  auto ctx = Context();
  return FromGrpc(lease_->LeaseRevoke(ctx.get(), req, &resp), "lease revoke", endpoints_text_);
}

absl::StatusOr<etcdserverpb::StatusResponse> EtcdClient::EndpointStatus(const std::string& endpoint,
                                                                        absl::Duration timeout) {
  auto it = maintenance_.find(endpoint);
  if (it == maintenance_.end()) {
    return absl::NotFoundError(absl::StrCat("etcd endpoint ", endpoint, " is not configured"));
  }
  etcdserverpb::StatusResponse resp;
  auto ctx = Context(timeout);
  auto s = FromGrpc(it->second->Status(ctx.get(), etcdserverpb::StatusRequest(), &resp), "status",
                    endpoint);
  if (!s.ok()) return s;
  return resp;
}

void EtcdClient::Watch(grpc::ClientContext* ctx, const etcdserverpb::WatchCreateRequest& create,
                       const std::function<bool(const etcdserverpb::WatchResponse&)>& on_response) {
  auto stream = watch_->Watch(ctx);
  etcdserverpb::WatchRequest req;
  *req.mutable_create_request() = create;
  if (stream->Write(req)) {
    etcdserverpb::WatchResponse resp;
    while (stream->Read(&resp)) {
      if (resp.canceled() || resp.compact_revision() != 0 || !on_response(resp)) break;
    }
  }
  ctx->TryCancel();
  stream->Finish().IgnoreError();
}

}  // namespace miroir::coordinator
