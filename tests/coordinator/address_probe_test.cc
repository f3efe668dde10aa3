// ProbeTcpAddress: the pre-flight of plans that add nodes.
#include "coordinator/address_probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace miroir::coordinator {
namespace {

// A loopback socket bound to an OS-assigned port, listening when asked.
struct BoundSocket {
  explicit BoundSocket(bool listening) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    if (listening) {
      EXPECT_EQ(listen(fd, 4), 0);
    }
  }
  ~BoundSocket() { close(fd); }
  int fd = -1;
  std::string address;
};

TEST(AddressProbe, AListeningAddressAnswers) {
  BoundSocket s(/*listening=*/true);
  EXPECT_TRUE(ProbeTcpAddress(s.address, absl::Seconds(2)).ok());
}

TEST(AddressProbe, ABoundButNotListeningPortIsUnavailable) {
  BoundSocket s(/*listening=*/false);  // holds the port so nobody else listens there
  absl::Status st = ProbeTcpAddress(s.address, absl::Seconds(2));
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_NE(st.message().find("refused"), std::string::npos) << st;
}

TEST(AddressProbe, MalformedAddressIsInvalidArgument) {
  EXPECT_EQ(ProbeTcpAddress("no-port", absl::Seconds(1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ProbeTcpAddress("host:", absl::Seconds(1)).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace miroir::coordinator
