// Converts records an earlier version wrote into today's shape, once, as the state
// store is loaded (ClusterState::FromLoaded), so an existing data dir (SQLite or
// etcd) still loads. The converted record is written back whole the next time it
// changes. Pure: no I/O; safe from any thread.
//
//   - v1::ReshardRecord: the state, failed_from and step were strings (fields 7,
//     8 and 34, now reserved); they become the enum fields.
//   - v1::Move: an abort's reconciliation of J into O was marked by a fence entry
//     with node "reconciled"; it becomes Move.abort_reconciled.
#ifndef MIROIR_COORDINATOR_STATE_UPGRADE_H_
#define MIROIR_COORDINATOR_STATE_UPGRADE_H_

#include "absl/status/status.h"
#include "miroir/v1/reshard.pb.h"
#include "miroir/v1/types.pb.h"

namespace miroir::coordinator {

// Converts the string state, failed_from and step of a record written before the
// enums (when present, they win: an older binary wrote them last) and drops them.
// DATA_LOSS naming the reshard, the field and the text when one is no known name,
// or when the record's state is then one the reshard machine does not know; the
// record is then unchanged.
absl::Status UpgradeReshardRecord(v1::ReshardRecord* r);

// Turns the "reconciled" marker fence of an aborting move into abort_reconciled.
void UpgradeMove(v1::Move* m);

}  // namespace miroir::coordinator

#endif  // MIROIR_COORDINATOR_STATE_UPGRADE_H_
