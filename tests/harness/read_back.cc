#include "harness/read_back.h"

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "miroir/v1/dataplane.grpc.pb.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

constexpr size_t kMaxFailureLines = 20;

void AddFailure(ReadBackReport* r, std::string line) {
  if (r->failures.size() < kMaxFailureLines) r->failures.push_back(std::move(line));
}

}  // namespace

std::string ReadBackReport::Summary() const {
  std::string s = absl::StrCat("keys_read=", keys_read, " found_deleted=", found_deleted,
                               " missing=", missing, " stale=", stale, " errors=", errors);
  for (const auto& f : failures) absl::StrAppend(&s, "\n  ", f);
  return s;
}

ReadBackReport ReadBack(const std::map<std::string, KeyRecord>& records,
                        const ReadBackOptions& options) {
  ReadBackReport r;
  std::vector<std::unique_ptr<pb::DataPlane::Stub>> stubs;
  for (const auto& a : options.worker_addresses) {
    stubs.push_back(pb::DataPlane::NewStub(MakeChannel(a)));
  }
  if (stubs.empty()) {
    r.errors = 1;
    AddFailure(&r, "no worker address to read through");
    return r;
  }
  size_t next = 0;
  for (const auto& [key, rec] : records) {
    if (!rec.acked || rec.unknown) continue;
    ++r.keys_read;
    pb::GetRequest req;
    req.set_index(options.index);
    req.set_pk(key);
    if (options.with_token) req.set_after_version(rec.version);
    pb::GetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const size_t w = next++ % stubs.size();
    grpc::Status st = stubs[w]->Get(&ctx, req, &resp);
    const std::string where = absl::StrCat("key ", key, " via ", options.worker_addresses[w], ": ");
    if (!st.ok()) {
      ++r.errors;
      AddFailure(&r, absl::StrCat(where, "Get failed: ", st.error_message()));
      continue;
    }
    ++r.answered_by[resp.node()];
    if (rec.deleted) {
      if (resp.found()) {
        ++r.found_deleted;
        AddFailure(&r, absl::StrCat(where, "deleted at version ", rec.version, " but found at ",
                                    resp.document().version(), " on ", resp.node()));
      }
    } else if (!resp.found()) {
      ++r.missing;
      AddFailure(&r, absl::StrCat(where, "put at version ", rec.version, " but not found (",
                                  resp.node(), ")"));
    } else if (resp.document().version() != rec.version || resp.document().body() != rec.body) {
      ++r.stale;
      AddFailure(&r, absl::StrCat(where, "put at version ", rec.version, " but read version ",
                                  resp.document().version(), " on ", resp.node()));
    }
  }
  return r;
}

}  // namespace miroir::testing
