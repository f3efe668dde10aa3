// EtcdCluster: real `etcd` members for a test (Debian etcd-server), on loopback
// ports the OS assigns, each with its data dir under the given directory. One
// member, or three for the quorum tests. Members can be killed, stopped and
// restarted (same ports, same data) to take quorum away and give it back.
// With EtcdTls the client port serves TLS only and requires a client
// certificate (--client-cert-auth); peers talk plain http on loopback.
//
// Thread-compatible: one owner calls it.
#ifndef MIROIR_TESTS_HARNESS_ETCD_CLUSTER_H_
#define MIROIR_TESTS_HARNESS_ETCD_CLUSTER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "harness/process.h"
#include "harness/test_pki.h"

namespace miroir::testing {

// TLS on the members' client port (TestPki files).
struct EtcdTls {
  std::string ca;    // verifies client certificates (--trusted-ca-file)
  CertFiles server;  // every member serves it; 127.0.0.1 in its SAN
  CertFiles client;  // what the harness's own etcdctl presents
};

class EtcdCluster {
 public:
  // Starts `members` members with data under `dir` and waits until the cluster
  // answers (a leader is elected). Retries with new ports when one was taken.
  // `tls`: https:// client URLs with client-certificate auth.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(
      const std::string& dir, int members = 1, std::optional<EtcdTls> tls = std::nullopt);
  ~EtcdCluster() = default;  // the Process destructors kill and reap

  int size() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:PORT" of every member's client port (TLS or not).
  std::vector<std::string> endpoints() const;
  std::string endpoint(int i) const;
  // endpoints() joined by commas.
  std::string endpoints_text() const;
  Process* process(int i) { return members_[i].process.get(); }

  absl::Status Kill(int i);
  // Starts member i again on its ports with its data.
  absl::Status Restart(int i);
  // Waits until `etcdctl endpoint health` passes for the running members.
  absl::Status WaitHealthy(absl::Duration timeout);

 private:
  struct Member {
    std::string name;
    std::string data_dir;
    int client_port = 0;
    int peer_port = 0;
    std::unique_ptr<Process> process;
  };
  EtcdCluster() = default;
  absl::Status Launch(int i, bool initial);

  // The client URL of member i: http:// or https://.
  std::string ClientUrl(int i) const;

  std::string dir_;
  std::optional<EtcdTls> tls_;
  std::string initial_cluster_;
  std::vector<Member> members_;
};

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_HARNESS_ETCD_CLUSTER_H_
