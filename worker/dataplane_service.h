// DataPlaneService: the thin gRPC service of the client data path (DESIGN §4).
// Write reads batches on a reader thread into a bounded queue (so a fast client
// meets HTTP/2 flow control and memory stays bounded) and answers each batch in
// order through WritePath; Get reads from a read owner at the worker's epoch;
// ReadShard pages one node's shard for checks.
//
// Thread-safe: gRPC calls the handlers from its own threads.
#ifndef MIROIR_WORKER_DATAPLANE_SERVICE_H_
#define MIROIR_WORKER_DATAPLANE_SERVICE_H_

#include "miroir/v1/dataplane.grpc.pb.h"
#include "worker/coordinator_link.h"
#include "worker/node_stores.h"
#include "worker/router.h"
#include "worker/write_path.h"

namespace miroir {

class DataPlaneService final : public v1::DataPlane::Service {
 public:
  DataPlaneService(WritePath* writes, Router* router, NodeStores* stores, CoordinatorLink* link,
                   int max_batches_in_flight)
      : writes_(writes),
        router_(router),
        stores_(stores),
        link_(link),
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
  const int max_batches_in_flight_;
};

// Fills a proto Document from a stored one.
void ToProto(const StoredDoc& d, v1::Document* out);

}  // namespace miroir

#endif  // MIROIR_WORKER_DATAPLANE_SERVICE_H_
