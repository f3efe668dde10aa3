#include "harness/reshard_ops.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/reshard_names.h"
#include "worker/stores/redis_store.h"

namespace miroir::testing {
namespace {

namespace pb = ::miroir::v1;

absl::Status FromGrpc(const grpc::Status& st) {
  return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
}

std::unique_ptr<pb::Reshard::Stub> Stub(Fleet& fleet) {
  return pb::Reshard::NewStub(
      grpc::CreateChannel(fleet.coordinator_address(), grpc::InsecureChannelCredentials()));
}

void Deadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
}

}  // namespace

absl::StatusOr<pb::ReshardStartResponse> StartReshard(Fleet& fleet, const ReshardRequest& r) {
  pb::ReshardStartRequest req;
  req.set_index(r.index);
  req.set_new_shards(r.new_shards);
  req.set_throttle_docs_per_s(r.throttle);
  req.set_force(r.force);
  req.set_schedule_window(r.window);
  pb::ReshardStartResponse resp;
  grpc::ClientContext ctx;
  Deadline(&ctx);
  grpc::Status st = Stub(fleet)->Start(&ctx, req, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::StatusOr<pb::ReshardStatusResponse> ReshardCall(Fleet& fleet, const std::string& verb,
                                                      const std::string& index) {
  pb::ReshardIndexRequest req;
  req.set_index(index);
  pb::ReshardStatusResponse resp;
  grpc::ClientContext ctx;
  Deadline(&ctx);
  auto stub = Stub(fleet);
  grpc::Status st;
  if (verb == "status") {
    st = stub->Status(&ctx, req, &resp);
  } else if (verb == "abort") {
    st = stub->Abort(&ctx, req, &resp);
  } else if (verb == "rollback") {
    st = stub->Rollback(&ctx, req, &resp);
  } else if (verb == "complete") {
    st = stub->Complete(&ctx, req, &resp);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("verb: unknown '", verb, "'"));
  }
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::StatusOr<pb::ReshardRecord> WaitForReshardState(Fleet& fleet,
                                                      const std::set<std::string>& states,
                                                      absl::Duration timeout,
                                                      const std::set<std::string>& bad,
                                                      const std::string& index) {
  const absl::Time deadline = absl::Now() + timeout;
  pb::ReshardRecord last;
  while (absl::Now() < deadline) {
    auto st = ReshardCall(fleet, "status", index);
    if (st.ok()) {
      last = st->reshard();
      const std::string state = ReshardStateName(last.state());
      if (states.count(state)) return last;
      if (bad.count(state)) {
        return absl::FailedPreconditionError(
            absl::StrCat("reshard ", last.id(), " is ", state, ": ", last.message()));
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("reshard still ", ReshardStateName(last.state()),
                                                  " ", ReshardStepName(last.step()), ": ",
                                                  last.message()));
}

absl::StatusOr<uint64_t> EntriesOfGeneration(Fleet& fleet, const std::string& index, uint64_t gen,
                                             uint32_t shards) {
  uint64_t n = 0;
  for (const auto& id : fleet.node_ids()) {
    auto store = RedisStore::Create(fleet.redis(id).address(),
                                    HarnessStoreOptions(fleet.redis(id).address()));
    if (!store.ok()) return store.status();
    for (uint32_t s = 0; s < shards; ++s) {
      std::string after;
      while (true) {
        auto page = (*store)->Scan(ShardKey{index, gen, s}, kAnyEpoch, after, 1000);
        if (!page.ok()) return page.status();
        n += page->size();
        if (page->size() < 1000) break;
        after = page->back().pk;
      }
    }
  }
  return n;
}

}  // namespace miroir::testing
