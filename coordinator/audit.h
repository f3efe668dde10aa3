// Audit trail (DESIGN §13): every accepted mutation records who made it, what
// it changed and when.
//
// A service handler that may mutate opens a ScopedCaller for the call; while it
// lives, Coordinator::Mutate on that thread stamps the change (StampAudit): the
// events it makes carry the caller, an anti-entropy run it starts names its
// starter, and one audit record goes to the store's audit log
// (StateStore::RecentAudit, shown by `miroir-ctl status`). Steps the
// coordinator takes by itself run on its own threads, outside any scope, and
// carry no actor.
#ifndef MIROIR_COORDINATOR_AUDIT_H_
#define MIROIR_COORDINATOR_AUDIT_H_

#include <cstdint>
#include <string>

#include "coordinator/cluster_state.h"
#include "grpcpp/grpcpp.h"
#include "miroir/v1/types.pb.h"

namespace miroir::coordinator {

// Who is calling: the token name or certificate subject the auth processor
// admitted (common/auth_processor.h), else the client certificate's subject,
// else "anonymous@PEER" (a server without auth).
std::string ActorOf(const grpc::ServerContext& ctx);

struct Caller {
  std::string actor;  // ActorOf
  std::string call;   // "Service/Method"
};

// The caller of the RPC this thread serves, for the scope's lifetime. Not
// copyable; scopes nest (the inner one wins until it ends).
class ScopedCaller {
 public:
  ScopedCaller(const grpc::ServerContext* ctx, std::string call);
  ScopedCaller(const ScopedCaller&) = delete;
  ScopedCaller& operator=(const ScopedCaller&) = delete;
  ~ScopedCaller();
  // The innermost live scope on this thread (nullptr: none).
  static const Caller* Current();

 private:
  Caller caller_;
  const Caller* outer_;
};

// Pure. Stamps `change` as made by `caller` at `now_ms`: events without an
// actor get caller's actor and call; anti-entropy runs started by an operator
// (not scheduled) without a starter get the actor; and one audit record is
// appended to change->audit: time, caller, the first event's plan id, and a
// summary of what changed (DescribeChange). A change that is empty stays so.
void StampAudit(const Caller& caller, int64_t now_ms, Change* change);

// Pure. One audit record: `caller` did `what` at `now_ms` (to "accepted").
v1::Event AuditRecord(const Caller& caller, int64_t now_ms, std::string what, uint64_t plan_id);

// Pure. A one-line summary of what `change` touches, e.g.
// "plan 7 (running -> paused); 1 event" or "index products; alias p -> products".
std::string DescribeChange(const Change& change);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_AUDIT_H_
