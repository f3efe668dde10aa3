// The channel every miroir client opens to a server (keepalive, reconnect
// backoff, message size). Header-only so the client library (client/) uses
// the same settings without linking miroir_common.
#ifndef MIROIR_COMMON_CLIENT_CHANNEL_H_
#define MIROIR_COMMON_CLIENT_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace miroir {

inline std::shared_ptr<grpc::Channel> NewClientChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

}  // namespace miroir

#endif  // MIROIR_COMMON_CLIENT_CHANNEL_H_
