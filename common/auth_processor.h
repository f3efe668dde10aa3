// The gRPC side of authorization: an AuthMetadataProcessor that runs Authorize
// (common/auth.h) on every call before its handler, with the table loaded from
// auth.tokens_file and re-read by Reload (SIGHUP). It does not block (a table
// lookup and a hash), so gRPC runs it on the call's own thread. Thread-safe.
#ifndef MIROIR_COMMON_AUTH_PROCESSOR_H_
#define MIROIR_COMMON_AUTH_PROCESSOR_H_

#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/auth.h"

namespace miroir {

class AuthProcessor : public grpc::AuthMetadataProcessor {
 public:
  // Loads `tokens_file`; INVALID_ARGUMENT naming the file and field on error.
  static absl::StatusOr<std::shared_ptr<AuthProcessor>> Load(const std::string& tokens_file);

  // Re-reads the file; on error keeps the previous table and returns the error.
  absl::Status Reload();

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;
  bool IsBlocking() const override { return false; }

 private:
  AuthProcessor(std::string path, AuthTable table)
      : path_(std::move(path)), table_(std::make_shared<const AuthTable>(std::move(table))) {}
  std::shared_ptr<const AuthTable> table() const {
    absl::MutexLock l(&mu_);
    return table_;
  }
  const std::string path_;
  mutable absl::Mutex mu_;
  // Replaced whole by Reload; a call decides on the table it took.
  std::shared_ptr<const AuthTable> table_ ABSL_GUARDED_BY(mu_);
};

}  // namespace miroir

#endif  // MIROIR_COMMON_AUTH_PROCESSOR_H_
