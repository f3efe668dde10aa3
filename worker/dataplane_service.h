// DataPlaneService: the thin gRPC service of the client data path (DESIGN §4).
// Write reads batches on a reader thread into a bounded queue (so a fast client
// meets HTTP/2 flow control and memory stays bounded) and answers each batch in
// order through WritePath; Get reads the shard's read set at the worker's epoch
// and answers the highest version among a group's quorum (worker/read_set.h);
// ReadShard pages one named node's shard for checks (operators, tests): it is
// not a client read and ignores the read set.
//
// Time: whether a read document has expired (expires_at_ms) is decided on the
// WritePath's injected clock, so tests move it by hand; the per-node read
// timeouts measure real time (they bound real waits).
//
// Thread-safe: gRPC calls the handlers from its own threads.
#ifndef MIROIR_WORKER_DATAPLANE_SERVICE_H_
#define MIROIR_WORKER_DATAPLANE_SERVICE_H_

#include "miroir/v1/dataplane.grpc.pb.h"
#include "worker/coordinator_link.h"
#include "worker/node_stores.h"
#include "worker/read_exclusions.h"
#include "worker/router.h"
#include "worker/write_path.h"

namespace miroir {

class DataPlaneService final : public v1::DataPlane::Service {
 public:
  // `exclusions` (may be null: none) names the nodes reads skip per shard.
  DataPlaneService(WritePath* writes, Router* router, NodeStores* stores, CoordinatorLink* link,
                   const ReadExclusions* exclusions, int max_batches_in_flight)
      : writes_(writes),
        router_(router),
        stores_(stores),
        link_(link),
        exclusions_(exclusions),
        max_batches_in_flight_(max_batches_in_flight < 1 ? 1 : max_batches_in_flight) {}

  grpc::Status Write(grpc::ServerContext* ctx,
                     grpc::ServerReaderWriter<v1::WriteAcks, v1::WriteBatch>* stream) override;
  grpc::Status Get(grpc::ServerContext* ctx, const v1::GetRequest* req,
                   v1::GetResponse* resp) override;
  grpc::Status ReadShard(grpc::ServerContext* ctx, const v1::ReadShardRequest* req,
                         v1::ReadShardResponse* resp) override;

 private:
  WritePath* writes_;
  Router* router_;
  NodeStores* stores_;
  CoordinatorLink* link_;
  const ReadExclusions* exclusions_;
  const int max_batches_in_flight_;
};

// Fills a proto Document from a stored one.
void ToProto(const StoredDoc& d, v1::Document* out);

}  // namespace miroir

#endif  // MIROIR_WORKER_DATAPLANE_SERVICE_H_
