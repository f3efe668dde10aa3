#include "worker/read_set.h"

#include <algorithm>

#include "common/route_sets.h"
#include "worker/quorum.h"

namespace miroir {

std::vector<GroupReadSet> ReadSetOf(const v1::ShardRoute& route,
                                    const std::function<bool(const std::string&)>& failed,
                                    const std::function<bool(const std::string&)>& excluded) {
  std::vector<GroupReadSet> out;
  for (const auto& g : ReadSet(route)) {
    GroupReadSet rs{g.group(), {}};
    for (const auto& n : g.nodes()) {
      if (!failed(n) && !excluded(n)) rs.nodes.push_back(n);
    }
    if (!rs.nodes.empty()) out.push_back(std::move(rs));
  }
  return out;
}

GroupReadSet WholeShardReadSet(const v1::ShardRoute& route,
                               const std::function<bool(const std::string&)>& failed) {
  GroupReadSet all{"*", {}};
  for (const auto& g : ReadSet(route)) {
    for (const auto& n : g.nodes()) {
      if (!failed(n)) all.nodes.push_back(n);
    }
  }
  return all;
}

uint32_t ReadQuorum(uint32_t rf, size_t read_set_size) {
  return static_cast<uint32_t>(std::min<size_t>(GroupQuorum(rf), read_set_size));
}

bool NewerAnswer(const ReadAnswer& a, const ReadAnswer& b) {
  if (!a.doc) return false;
  if (!b.doc) return true;
  return a.doc->version > b.doc->version;
}

bool IsLiveDoc(const StoredDoc& doc, int64_t now_ms) {
  return !doc.tombstone && (doc.expires_at_ms == 0 || doc.expires_at_ms > now_ms);
}

namespace {

const ReadAnswer* Highest(const std::vector<ReadAnswer>& answers) {
  const ReadAnswer* best = nullptr;
  for (const auto& a : answers) {
    if (best == nullptr || NewerAnswer(a, *best)) best = &a;
  }
  return best;
}

bool MeetsToken(const ReadAnswer& a, uint64_t after_version) {
  if (after_version == 0) return true;
  return a.doc && a.doc->version.hlc >= after_version;
}

}  // namespace

ReadOutcome QuorumRead(
    const std::vector<GroupReadSet>& groups, uint32_t rf, uint64_t after_version,
    const std::function<absl::StatusOr<std::optional<StoredDoc>>(const std::string&)>& read_node) {
  ReadOutcome out;
  std::vector<ReadAnswer> partial;  // answers of groups that missed their quorum
  bool stale = false;
  for (const GroupReadSet& g : groups) {
    const uint32_t need = ReadQuorum(rf, g.nodes.size());
    std::vector<ReadAnswer> answers;
    for (const auto& node : g.nodes) {
      if (answers.size() >= need) break;
      absl::StatusOr<std::optional<StoredDoc>> r = read_node(node);
      if (r.ok()) {
        answers.push_back(ReadAnswer{node, std::move(*r)});
      } else if (r.status().code() == absl::StatusCode::kFailedPrecondition) {
        out.fenced = true;
      }
    }
    if (need == 0 || answers.size() < need) {
      for (auto& a : answers) partial.push_back(std::move(a));
      continue;
    }
    const ReadAnswer* best = Highest(answers);
    if (!MeetsToken(*best, after_version)) {
      // Another group may hold the client's write (acknowledged by it alone).
      stale = true;
      continue;
    }
    out.kind = ReadOutcome::Kind::kQuorum;
    out.answer = *best;
    return out;
  }
  if (const ReadAnswer* best = Highest(partial)) {
    if (MeetsToken(*best, after_version)) {
      out.kind = ReadOutcome::Kind::kPartial;
      out.answer = *best;
      return out;
    }
    stale = true;
  }
  out.kind = stale ? ReadOutcome::Kind::kStale : ReadOutcome::Kind::kNone;
  return out;
}

}  // namespace miroir
