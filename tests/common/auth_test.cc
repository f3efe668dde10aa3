#include "common/auth.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "miroir/v1/anti_entropy.grpc.pb.h"
#include "miroir/v1/coordinator.grpc.pb.h"
#include "miroir/v1/dataplane.grpc.pb.h"
#include "miroir/v1/reshard.grpc.pb.h"
#include "miroir/v1/worker_control.grpc.pb.h"

namespace miroir {
namespace {

const std::string kAdminToken = "admin-secret-1";
const std::string kViewerToken = "viewer-secret-2";

AuthTable Table() {
  auto t = ParseAuthTable(
      absl::StrCat("tokens:\n  - {name: ops-alice, sha256: ", Sha256Hex(kAdminToken),
                   ", role: admin}\n", "  - {name: dash, sha256: ", Sha256Hex(kViewerToken),
                   ", role: viewer}\n",
                   "subjects:\n  - {subject: \"CN=worker-1\", role: worker}\n"),
      "tokens.yaml");
  EXPECT_TRUE(t.ok()) << t.status();
  return *t;
}

CallCredentials Bearer(const std::string& token) {
  CallCredentials c;
  c.authorization = "Bearer " + token;
  return c;
}

// Every method of every miroir.v1 service, read from the compiled descriptors, so
// a new RPC cannot be added without a role.
std::vector<const google::protobuf::MethodDescriptor*> AllMethods() {
  std::vector<const google::protobuf::MethodDescriptor*> out;
  // One message per .proto file reaches the file and so all of its services.
  for (const google::protobuf::FileDescriptor* f :
       {v1::InitClusterRequest::descriptor()->file(), v1::ReshardStartRequest::descriptor()->file(),
        v1::AntiEntropyRunRequest::descriptor()->file(), v1::GetRequest::descriptor()->file(),
        v1::WorkerMessage::descriptor()->file(), v1::Event::descriptor()->file()}) {
    for (int s = 0; s < f->service_count(); ++s) {
      for (int m = 0; m < f->service(s)->method_count(); ++m)
        out.push_back(f->service(s)->method(m));
    }
  }
  return out;
}

// Independent of the table in auth.cc: reads are named Get*, List*, Watch*,
// Status, Check*, Verify; everything else of the operator services mutates.
Role ExpectedRole(const google::protobuf::MethodDescriptor* m) {
  const std::string& service = m->service()->name();
  if (service == "DataPlane") return Role::kClient;
  if (service == "WorkerControl") return Role::kWorker;
  for (const char* prefix : {"Get", "List", "Watch", "Status", "Check", "Verify"}) {
    if (absl::StartsWith(m->name(), prefix)) return Role::kViewer;
  }
  return Role::kAdmin;
}

TEST(Auth, EveryMethodOfEveryServiceRequiresItsRole) {
  const auto methods = AllMethods();
  ASSERT_GE(methods.size(), 30u);
  std::set<std::string> services;
  for (const auto* m : methods) {
    services.insert(m->service()->name());
    const std::string path = absl::StrCat("/", m->service()->full_name(), "/", m->name());
    auto role = RequiredRole(path);
    ASSERT_TRUE(role.ok()) << path << ": " << role.status();
    EXPECT_EQ(RoleName(*role), RoleName(ExpectedRole(m))) << path;
  }
  EXPECT_EQ(services, (std::set<std::string>{"Coordinator", "Reshard", "AntiEntropy", "DataPlane",
                                             "WorkerControl"}));
}

TEST(Auth, EachRoleIsAllowedExactlyItsMethods) {
  const AuthTable table = Table();
  for (const auto* m : AllMethods()) {
    const std::string path = absl::StrCat("/", m->service()->full_name(), "/", m->name());
    const Role need = ExpectedRole(m);
    auto as_admin = Authorize(table, path, Bearer(kAdminToken));
    auto as_viewer = Authorize(table, path, Bearer(kViewerToken));
    CallCredentials cert;
    cert.cert_subjects = {"CN=worker-1"};
    auto as_worker = Authorize(table, path, cert);
    EXPECT_EQ(as_admin.ok(), need == Role::kAdmin || need == Role::kViewer) << path;
    EXPECT_EQ(as_viewer.ok(), need == Role::kViewer) << path;
    EXPECT_EQ(as_worker.ok(), need == Role::kWorker) << path;
    for (const auto* r : {&as_admin, &as_viewer, &as_worker}) {
      if (!r->ok()) {
        EXPECT_EQ(r->status().code(), absl::StatusCode::kPermissionDenied) << path;
      }
    }
  }
}

TEST(Auth, ViewerCallingCreatePlanIsDeniedNamingRoleAndMethod) {
  auto r = Authorize(Table(), "/miroir.v1.Coordinator/CreatePlan", Bearer(kViewerToken));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(),
            "dash (role viewer) may not call miroir.v1.Coordinator/CreatePlan: it needs role "
            "admin");
}

TEST(Auth, AdminIsNamedByItsTokenName) {
  auto r = Authorize(Table(), "/miroir.v1.Coordinator/AbortPlan", Bearer(kAdminToken));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->name, "ops-alice");
}

TEST(Auth, WrongTokenIsUnauthenticatedWithoutEchoingIt) {
  auto r = Authorize(Table(), "/miroir.v1.Coordinator/GetStatus", Bearer("not-a-known-token"));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(r.status().message(), "authorization: unknown bearer token");
}

TEST(Auth, MissingOrMalformedCredentialsAreUnauthenticated) {
  EXPECT_EQ(Authorize(Table(), "/miroir.v1.Coordinator/GetStatus", {}).status().code(),
            absl::StatusCode::kUnauthenticated);
  CallCredentials basic;
  basic.authorization = "Basic dXNlcjpwYXNz";
  auto r = Authorize(Table(), "/miroir.v1.Coordinator/GetStatus", basic);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(absl::StrContains(r.status().message(), "dXNlcjpwYXNz"));
  CallCredentials unknown_cert;
  unknown_cert.cert_subjects = {"CN=stranger"};
  r = Authorize(Table(), "/miroir.v1.WorkerControl/Session", unknown_cert);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "CN=stranger")) << r.status();
}

TEST(Auth, HealthChecksAreOpenAndUnknownMethodsRefused) {
  EXPECT_TRUE(Authorize(Table(), "/grpc.health.v1.Health/Check", {}).ok());
  EXPECT_EQ(Authorize(Table(), "/miroir.v1.Coordinator/DropEverything", Bearer(kAdminToken))
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(Auth, MalformedTokensFileNamesFileLineAndField) {
  auto r = ParseAuthTable("tokens:\n  - {name: a, sha256: xyz, role: admin}\n", "t.yaml");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "t.yaml:2: tokens[0].sha256: must be 64 hex digits (sha256sum of the token)");
  r = ParseAuthTable(
      absl::StrCat("tokens:\n  - {name: a, sha256: ", Sha256Hex("x"), ", role: root}\n"), "t.yaml");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "t.yaml:2: tokens[0].role: unknown role"))
      << r.status();
  r = ParseAuthTable("subjects:\n  - {subject: CN=x}\n", "t.yaml");
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "t.yaml:2: subjects[0].role")) << r.status();
  r = ParseAuthTable("tokenz: []\n", "t.yaml");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Auth, Sha256MatchesSha256sum) {
  // printf test | sha256sum
  EXPECT_EQ(Sha256Hex("test"), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

}  // namespace
}  // namespace miroir
