// The Kubernetes manifests (deploy/k8s) agree with the programs: every
// manifest parses; the ConfigMaps' YAML loads with the programs' own config
// parsers; container, Service and gRPC probe ports are the configured listen
// ports; args are flags the binaries accept (their --help); config and data
// mounts are where the args point; the worker config names the coordinator
// Service; PodDisruptionBudgets select the pods. No cluster is involved.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "coordinator/config.h"
#include "worker/worker_config.h"

namespace miroir {
namespace {

const std::string kDir = std::string(MIROIR_SOURCE_DIR) + "/deploy/k8s/";

// kind/name -> document.
std::map<std::string, YAML::Node> LoadManifests(const std::string& file) {
  std::map<std::string, YAML::Node> out;
  for (const YAML::Node& doc : YAML::LoadAllFromFile(kDir + file)) {
    if (!doc || doc.IsNull()) continue;
    EXPECT_TRUE(doc["apiVersion"].IsDefined()) << file;
    out[doc["kind"].as<std::string>() + "/" + doc["metadata"]["name"].as<std::string>()] = doc;
  }
  return out;
}

int PortOf(const std::string& host_port) {
  std::vector<std::string> parts = absl::StrSplit(host_port, ':');
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(parts.back(), &port)) << host_port;
  return port;
}

std::string HelpOf(const std::string& binary) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen((binary + " --help").c_str(), "r"), pclose);
  EXPECT_NE(p, nullptr);
  std::array<char, 4096> buf;
  size_t n;
  while (p && (n = fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  return out;
}

// The flags in `args` (and their values: "--flag value" pairs).
std::map<std::string, std::string> Flags(const YAML::Node& args) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < args.size(); i += 2) {
    std::string a = args[i].as<std::string>();
    EXPECT_EQ(a.rfind("--", 0), 0u) << "positional argument " << a;
    out[a] = i + 1 < args.size() ? args[i + 1].as<std::string>() : "";
  }
  return out;
}

// Checks shared by both programs; returns the container.
YAML::Node CheckWorkload(const YAML::Node& workload, const std::string& binary, int grpc_port,
                         int metrics_port, const std::string& config_path) {
  const YAML::Node spec = workload["spec"];
  const YAML::Node labels = spec["template"]["metadata"]["labels"];
  for (const auto& kv : spec["selector"]["matchLabels"]) {
    EXPECT_EQ(labels[kv.first.as<std::string>()].as<std::string>(), kv.second.as<std::string>());
  }
  const YAML::Node c = spec["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["command"][0].as<std::string>(), "/usr/bin/" + binary);
  const std::string help =
      HelpOf(binary == "miroir-worker" ? MIROIR_WORKER_BIN : MIROIR_COORDINATOR_BIN);
  EXPECT_NE(help.find("--config"), std::string::npos) << binary << " --help said: " << help;
  for (const auto& [flag, value] : Flags(c["args"])) {
    EXPECT_NE(help.find(flag), std::string::npos) << binary << " has no flag " << flag;
  }
  EXPECT_EQ(Flags(c["args"])["--config"], config_path);
  std::map<std::string, int> ports;
  for (const auto& p : c["ports"])
    ports[p["name"].as<std::string>()] = p["containerPort"].as<int>();
  EXPECT_EQ(ports["grpc"], grpc_port);
  EXPECT_EQ(ports["metrics"], metrics_port);
  // gRPC health (grpc.health.v1, served by every program) on the gRPC port.
  EXPECT_EQ(c["readinessProbe"]["grpc"]["port"].as<int>(), grpc_port);
  EXPECT_EQ(c["livenessProbe"]["grpc"]["port"].as<int>(), grpc_port);
  EXPECT_TRUE(c["resources"]["requests"]["memory"].IsDefined());
  EXPECT_TRUE(c["resources"]["limits"]["memory"].IsDefined());
  EXPECT_FALSE(c["securityContext"]["allowPrivilegeEscalation"].as<bool>());
  EXPECT_TRUE(c["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  // The config file is mounted where --config points.
  bool mounted = false;
  for (const auto& m : c["volumeMounts"]) {
    mounted |= m["mountPath"].as<std::string>() == config_path;
  }
  EXPECT_TRUE(mounted) << config_path;
  return c;
}

void CheckService(const YAML::Node& svc, const YAML::Node& workload, int grpc_port) {
  for (const auto& kv : svc["spec"]["selector"]) {
    EXPECT_EQ(
        workload["spec"]["selector"]["matchLabels"][kv.first.as<std::string>()].as<std::string>(),
        kv.second.as<std::string>());
  }
  bool grpc = false;
  for (const auto& p : svc["spec"]["ports"]) {
    if (p["name"].as<std::string>() != "grpc") continue;
    grpc = true;
    EXPECT_EQ(p["port"].as<int>(), grpc_port);
    EXPECT_EQ(p["targetPort"].as<std::string>(), "grpc");
  }
  EXPECT_TRUE(grpc);
}

void CheckPdb(const YAML::Node& pdb, const YAML::Node& workload) {
  for (const auto& kv : pdb["spec"]["selector"]["matchLabels"]) {
    EXPECT_EQ(workload["spec"]["template"]["metadata"]["labels"][kv.first.as<std::string>()]
                  .as<std::string>(),
              kv.second.as<std::string>());
  }
}

TEST(K8sManifests, CoordinatorStatefulSetMatchesItsConfigAndFlags) {
  auto m = LoadManifests("coordinator.yaml");
  ASSERT_TRUE(m.count("ConfigMap/miroir-coordinator-config"));
  ASSERT_TRUE(m.count("StatefulSet/miroir-coordinator"));
  ASSERT_TRUE(m.count("Service/miroir-coordinator"));
  ASSERT_TRUE(m.count("PodDisruptionBudget/miroir-coordinator"));
  auto cfg = coordinator::ParseCoordinatorConfig(
      m["ConfigMap/miroir-coordinator-config"]["data"]["coordinator.yaml"].as<std::string>(),
      "configmap coordinator.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(coordinator::ValidateCoordinatorConfig(*cfg).ok());
  const YAML::Node sts = m["StatefulSet/miroir-coordinator"];
  // One coordinator per data directory (DATA_DIR/LOCK).
  EXPECT_EQ(sts["spec"]["replicas"].as<int>(), 1);
  YAML::Node c = CheckWorkload(sts, "miroir-coordinator", PortOf(cfg->listen),
                               PortOf(cfg->metrics_listen), "/etc/miroir/coordinator.yaml");
  const std::string data_dir = Flags(c["args"])["--data-dir"];
  EXPECT_EQ(data_dir, cfg->data_dir);
  bool data_on_claim = false;
  for (const auto& v : c["volumeMounts"]) {
    if (v["mountPath"].as<std::string>() != data_dir) continue;
    for (const auto& t : sts["spec"]["volumeClaimTemplates"]) {
      data_on_claim |= t["metadata"]["name"].as<std::string>() == v["name"].as<std::string>();
    }
  }
  EXPECT_TRUE(data_on_claim) << "the data directory is not on the PersistentVolumeClaim";
  CheckService(m["Service/miroir-coordinator"], sts, PortOf(cfg->listen));
  CheckPdb(m["PodDisruptionBudget/miroir-coordinator"], sts);
}

TEST(K8sManifests, WorkerDeploymentMatchesItsConfigAndFollowsTheCoordinatorService) {
  auto m = LoadManifests("worker.yaml");
  auto coord = LoadManifests("coordinator.yaml");
  ASSERT_TRUE(m.count("ConfigMap/miroir-worker-config"));
  ASSERT_TRUE(m.count("Deployment/miroir-worker"));
  ASSERT_TRUE(m.count("Service/miroir-worker"));
  ASSERT_TRUE(m.count("PodDisruptionBudget/miroir-worker"));
  auto cfg = ParseWorkerConfig(
      m["ConfigMap/miroir-worker-config"]["data"]["worker.yaml"].as<std::string>(),
      "configmap worker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const YAML::Node dep = m["Deployment/miroir-worker"];
  CheckWorkload(dep, "miroir-worker", PortOf(cfg->listen), PortOf(cfg->metrics_listen),
                "/etc/miroir/worker.yaml");
  CheckService(m["Service/miroir-worker"], dep, PortOf(cfg->listen));
  CheckPdb(m["PodDisruptionBudget/miroir-worker"], dep);
  EXPECT_LT(m["PodDisruptionBudget/miroir-worker"]["spec"]["minAvailable"].as<int>(),
            dep["spec"]["replicas"].as<int>())
      << "the PDB would block every drain";
  // The worker follows the coordinator's Service on its gRPC port.
  std::vector<std::string> hp = absl::StrSplit(cfg->coordinator, ':');
  ASSERT_EQ(hp.size(), 2u);
  ASSERT_TRUE(coord.count("Service/" + hp[0])) << cfg->coordinator;
  bool port = false;
  for (const auto& p : coord["Service/" + hp[0]]["spec"]["ports"]) {
    port |= std::to_string(p["port"].as<int>()) == hp[1];
  }
  EXPECT_TRUE(port) << cfg->coordinator;
}

}  // namespace
}  // namespace miroir
