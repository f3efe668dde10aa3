#include "coordinator/verify_ops.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"

namespace miroir::coordinator {
namespace {

void Settle(v1::VerifyOperation* op, v1::ShardVerdict v) {
  if (v.finished()) {
    if (!v.consistent()) op->set_divergent(op->divergent() + 1);
    op->set_divergent_keys(op->divergent_keys() + v.mismatches());
  } else {
    op->set_unfinished(op->unfinished() + 1);
  }
  op->set_done(op->done() + 1);
  *op->add_shards() = std::move(v);
}

v1::ShardVerdict Unfinished(uint32_t shard, const std::vector<std::string>& nodes,
                            const std::string& why) {
  v1::ShardVerdict v;
  v.set_shard(shard);
  for (const auto& n : nodes) v.add_nodes(n);
  v.set_finished(false);
  v.set_consistent(false);
  v.set_error(why);
  return v;
}

}  // namespace

v1::ShardVerdict VerdictOf(const TaskRecord& t) {
  v1::ShardVerdict v;
  v.set_shard(t.task.shard());
  const bool done = t.status == TaskRecord::Status::kDone;
  v.set_finished(done);
  bool consistent = done && t.result.mismatches() == 0;
  for (const auto& d : t.result.digests()) {
    v.add_nodes(d.node());
    v.add_documents(d.documents());
    v.add_digests(d.digest());
    if (d.digest() != t.result.digests(0).digest() ||
        d.documents() != t.result.digests(0).documents()) {
      consistent = false;
    }
  }
  if (t.result.digests().empty()) {
    for (const auto& n : t.task.sources()) v.add_nodes(n);
  }
  v.set_consistent(consistent);
  if (done) {
    v.set_mismatches(t.result.mismatches());
    for (const auto& k : t.result.divergent_keys()) v.add_divergent_keys(k);
  } else {
    v.set_error(t.error.empty() ? "task failed" : t.error);
  }
  return v;
}

std::vector<uint64_t> AdvanceVerify(v1::VerifyOperation* op,
                                    const std::map<uint64_t, TaskRecord>& tasks,
                                    uint64_t task_retries, int64_t now_ms, bool generation_exists) {
  std::vector<uint64_t> deleted;
  if (op->state() != kVerifyRunning) return deleted;
  std::vector<uint64_t> left;
  for (uint64_t id : op->task_ids()) {
    auto it = tasks.find(id);
    if (it == tasks.end()) {
      // Lost (e.g. deleted by hand): nothing is known about its shard.
      Settle(op, Unfinished(0, {}, absl::StrCat("task ", id, " vanished")));
      continue;
    }
    const TaskRecord& t = it->second;
    if (t.status == TaskRecord::Status::kDone || t.FailedForGood(task_retries)) {
      Settle(op, VerdictOf(t));
      deleted.push_back(id);
      continue;
    }
    left.push_back(id);
  }
  std::string why;
  if (!generation_exists) {
    why = absl::StrCat("index ", op->index(), " generation ", op->generation(), " is gone");
  } else if (!left.empty() && now_ms >= op->deadline_ms()) {
    why = "the operation's timeout passed before the shard was compared";
  }
  if (!why.empty()) {
    for (uint64_t id : left) {
      const TaskRecord& t = tasks.at(id);
      std::vector<std::string> nodes(t.task.sources().begin(), t.task.sources().end());
      std::string shard_why = why;
      if (!t.error.empty()) absl::StrAppend(&shard_why, " (last error: ", t.error, ")");
      if (t.status == TaskRecord::Status::kLeased) {
        absl::StrAppend(&shard_why, " (held by worker ", t.worker, ")");
      }
      Settle(op, Unfinished(t.task.shard(), nodes, shard_why));
      deleted.push_back(id);
    }
    left.clear();
  }
  op->clear_task_ids();
  for (uint64_t id : left) op->add_task_ids(id);
  std::sort(
      op->mutable_shards()->begin(), op->mutable_shards()->end(),
      [](const v1::ShardVerdict& a, const v1::ShardVerdict& b) { return a.shard() < b.shard(); });
  if (left.empty()) {
    op->set_finished_ms(now_ms);
    if (!generation_exists) {
      op->set_state(kVerifyFailed);
      op->set_message(why);
    } else if (op->unfinished() > 0) {
      op->set_state(kVerifyDidNotFinish);
      op->set_message(why.empty()
                          ? absl::StrCat(op->unfinished(),
                                         " shard(s) were not compared (their "
                                         "tasks failed)")
                          : absl::StrCat(op->unfinished(), " shard(s) were not compared: ", why));
    } else {
      op->set_state(kVerifyDone);
    }
  }
  return deleted;
}

v1::VerifyResponse VerifyResponseOf(const v1::VerifyOperation& op) {
  v1::VerifyResponse resp;
  for (const auto& v : op.shards()) {
    *resp.add_shards() = v;
    if (!v.consistent()) resp.set_divergent(resp.divergent() + 1);
  }
  return resp;
}

}  // namespace miroir::coordinator
