// reshard_load_model: the resharding load study, part (a) (issue 6 item 8): the
// DESIGN §7 model for the three scenarios of the original study, computed with the
// real routing code and the coordinator's dry-run formula:
//
//   - miroir::ShardForKey (common/routing.h) places a sample of synthetic keys
//     "doc:N" under S_old and S_new;
//   - miroir::OwnerTable (rendezvous owners within each group, the same table the
//     router uses) gives each shard's write targets under both S;
//   - miroir::coordinator::EstimateReshard (coordinator/reshard_machine.h, linked,
//     not reimplemented) gives the storage peak, the peak node writes/s and the
//     backfill duration of `reshard start --dry-run`.
//
// Prints Markdown (bench/reshard_load.sh wraps it into
// docs/benchmarks/resharding-load.md). Deterministic: no clock, no randomness.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/routing.h"
#include "coordinator/reshard_machine.h"

namespace {

struct Scenario {
  const char* name;
  double doc_bytes;
  double corpus_bytes;
  double write_dps;
  uint32_t groups;
  uint32_t rf;
  uint32_t nodes_per_group;
  uint32_t s_old;
  uint32_t s_new;
  double throttle_dps;
};

// Decimal units, as the original study states its corpora (10 GB = 10^10 bytes).
constexpr double kKB = 1e3, kMB = 1e6, kGB = 1e9, kTB = 1e12;

const Scenario kScenarios[] = {
    {"1: 1 KB docs, 10 GB", 1 * kKB, 10 * kGB, 100, 2, 1, 3, 64, 128, 10000},
    {"2: 10 KB docs, 100 GB", 10 * kKB, 100 * kGB, 1000, 2, 2, 4, 64, 128, 10000},
    {"3: 1 MB docs, 1 TB", 1 * kMB, 1 * kTB, 10, 2, 1, 4, 64, 128, 5000},
};

// Node ids as deploy/local/fleet.sh names them: r0, r1, ... across groups g0, g1, ...
std::vector<miroir::GroupNodes> Topology(const Scenario& sc) {
  std::vector<miroir::GroupNodes> groups;
  uint32_t n = 0;
  for (uint32_t g = 0; g < sc.groups; ++g) {
    miroir::GroupNodes gn;
    gn.group = absl::StrCat("g", g);
    for (uint32_t i = 0; i < sc.nodes_per_group; ++i) gn.nodes.push_back(absl::StrCat("r", n++));
    groups.push_back(std::move(gn));
  }
  return groups;
}

double Cv(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  var /= static_cast<double>(v.size());
  return mean == 0 ? 0 : std::sqrt(var) / mean;
}

struct Result {
  miroir::coordinator::ReshardEstimate est;
  double docs = 0;
  double steady_bytes = 0;
  double storage_amp = 0;
  double writes_before = 0;  // node writes per client write, sampled
  double writes_dual = 0;
  double dual_distinct_nodes = 0;  // distinct nodes touched per client write in dual-write
  double node_mean = 0;            // formula / total nodes
  double node_max_avg = 0;         // max over nodes, time-averaged over the backfill
  std::string node_max_avg_id;
  double node_max_conc = 0;                 // max over nodes at the worst moment, concurrency c
  double cv_old = 0, cv_new = 0;            // per-shard document counts
  double cv_node_old = 0, cv_node_new = 0;  // per-node document (replica) counts
  uint32_t total_nodes = 0;
  uint32_t same_owner_shards = 0;  // shadow shard n < S_old whose owners = live shard n's
};

constexpr uint64_t kSample = 1000000;
constexpr uint32_t kConcurrency = 4;  // resharding.backfill_concurrency default

Result Model(const Scenario& sc) {
  Result r;
  const auto topo = Topology(sc);
  r.total_nodes = sc.groups * sc.nodes_per_group;
  const miroir::OwnerTable old_t(sc.s_old, topo, sc.rf);
  const miroir::OwnerTable new_t(sc.s_new, topo, sc.rf);

  for (uint32_t n = 0; n < sc.s_new; ++n) {
    if (n < sc.s_old && old_t.WriteTargets(n) == new_t.WriteTargets(n)) ++r.same_owner_shards;
  }
  r.docs = std::floor(sc.corpus_bytes / sc.doc_bytes);
  r.steady_bytes = sc.corpus_bytes * sc.rf * sc.groups;
  miroir::coordinator::ReshardEstimateInput in;
  in.documents = static_cast<uint64_t>(r.docs);
  in.bytes = static_cast<uint64_t>(sc.corpus_bytes);
  in.rf = sc.rf;
  in.groups = sc.groups;
  in.backfill_dps = sc.throttle_dps;
  in.write_dps = sc.write_dps;
  auto est = miroir::coordinator::EstimateReshard(in);
  if (!est.ok()) {
    std::fprintf(stderr, "EstimateReshard: %s\n", est.status().ToString().c_str());
    std::exit(1);
  }
  r.est = *est;
  r.storage_amp = static_cast<double>(r.est.storage_peak_bytes) / r.steady_bytes;

  // Sample keys through the real shard function and the real owners.
  std::vector<double> per_old(sc.s_old, 0), per_new(sc.s_new, 0);
  std::map<std::string, double> node_old, node_new;  // replica slots per node
  for (const auto& g : topo) {
    for (const auto& n : g.nodes) node_old[n] = node_new[n] = 0;
  }
  // docs of old shard s landing on each node under S_new (for the concurrency model)
  std::vector<std::map<std::string, double>> old_shard_to_node(sc.s_old);
  uint64_t w_before = 0, w_dual = 0, distinct = 0;
  for (uint64_t i = 0; i < kSample; ++i) {
    const std::string pk = absl::StrCat("doc:", i);
    const uint32_t so = miroir::ShardForKey(pk, sc.s_old);
    const uint32_t sn = miroir::ShardForKey(pk, sc.s_new);
    per_old[so] += 1;
    per_new[sn] += 1;
    const auto& to = old_t.WriteTargets(so);
    const auto& tn = new_t.WriteTargets(sn);
    for (const auto& n : to) node_old[n] += 1;
    for (const auto& n : tn) {
      node_new[n] += 1;
      old_shard_to_node[so][n] += 1;
    }
    w_before += to.size();
    w_dual += to.size() + tn.size();  // two generations: two node writes even on one node
    std::vector<std::string> u(to.begin(), to.end());
    u.insert(u.end(), tn.begin(), tn.end());
    std::sort(u.begin(), u.end());
    distinct += static_cast<uint64_t>(std::unique(u.begin(), u.end()) - u.begin());
  }
  const double k = static_cast<double>(kSample);
  r.writes_before = static_cast<double>(w_before) / k;
  r.writes_dual = static_cast<double>(w_dual) / k;
  r.dual_distinct_nodes = static_cast<double>(distinct) / k;
  r.cv_old = Cv(per_old);
  r.cv_new = Cv(per_new);
  std::vector<double> vo, vn;
  for (auto& [n, c] : node_old) vo.push_back(c);
  for (auto& [n, c] : node_new) vn.push_back(c);
  r.cv_node_old = Cv(vo);
  r.cv_node_new = Cv(vn);

  // Per node, time-averaged over the backfill: backfill writes go to the new
  // owners of each document, client writes to the old and the new owners.
  r.node_mean = r.est.peak_node_writes_per_s / r.total_nodes;
  for (const auto& [n, c] : node_new) {
    const double w = sc.throttle_dps * c / k + sc.write_dps * (node_old[n] + c) / k;
    if (w > r.node_max_avg) {
      r.node_max_avg = w;
      r.node_max_avg_id = n;
    }
  }
  // Worst moment with `kConcurrency` live shards backfilled at once (taken in
  // shard order, the throttle split over them by document count): the backfill
  // writes of old shard s all land on new shards congruent to s mod S_old, so few
  // nodes take them.
  for (uint32_t start = 0; start < sc.s_old; ++start) {
    std::map<std::string, double> hits;
    double docs_in = 0;
    for (uint32_t j = 0; j < kConcurrency; ++j) {
      const uint32_t s = (start + j) % sc.s_old;
      docs_in += per_old[s];
      for (const auto& [n, c] : old_shard_to_node[s]) hits[n] += c;
    }
    for (const auto& [n, c] : node_new) {
      const double bf = docs_in > 0 ? sc.throttle_dps * hits[n] / docs_in : 0;
      const double w = bf + sc.write_dps * (node_old[n] + c) / k;
      r.node_max_conc = std::max(r.node_max_conc, w);
    }
  }
  return r;
}

std::string Bytes(double b) {
  if (b >= kTB) return absl::StrFormat("%.2f TB", b / kTB);
  if (b >= kGB) return absl::StrFormat("%.1f GB", b / kGB);
  return absl::StrFormat("%.1f MB", b / kMB);
}

std::string Duration(double s) {
  if (s >= 3600) return absl::StrFormat("%.0f s (%.2f h)", s, s / 3600);
  return absl::StrFormat("%.0f s (%.1f min)", s, s / 60);
}

}  // namespace

int main() {
  std::vector<Result> rs;
  for (const auto& sc : kScenarios) rs.push_back(Model(sc));

  std::printf("### Scenarios\n\n");
  std::printf(
      "| scenario | docs | corpus (one replica) | client writes/s | RG | RF | nodes/group | S "
      "| throttle docs/s |\n|---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < rs.size(); ++i) {
    const auto& sc = kScenarios[i];
    std::printf("| %s | %.0f | %s | %.0f | %u | %u | %u | %u→%u | %.0f |\n", sc.name, rs[i].docs,
                Bytes(sc.corpus_bytes).c_str(), sc.write_dps, sc.groups, sc.rf, sc.nodes_per_group,
                sc.s_old, sc.s_new, sc.throttle_dps);
  }

  std::printf("\n### Model\n\n");
  std::printf("| quantity | scenario 1 | scenario 2 | scenario 3 |\n|---|---|---|---|\n");
  auto row = [&](const char* label, auto fmt) {
    std::printf("| %s |", label);
    for (size_t i = 0; i < rs.size(); ++i) std::printf(" %s |", fmt(kScenarios[i], rs[i]).c_str());
    std::printf("\n");
  };
  row("steady storage, all replicas",
      [](const Scenario&, const Result& r) { return Bytes(r.steady_bytes); });
  row("peak storage (EstimateReshard)", [](const Scenario&, const Result& r) {
    return Bytes(static_cast<double>(r.est.storage_peak_bytes));
  });
  row("**storage amplification** (peak / steady)",
      [](const Scenario&, const Result& r) { return absl::StrFormat("**%.2f×**", r.storage_amp); });
  row("node writes per client write, before (sampled)",
      [](const Scenario&, const Result& r) { return absl::StrFormat("%.3f", r.writes_before); });
  row("node writes per client write, dual-write (sampled)",
      [](const Scenario&, const Result& r) { return absl::StrFormat("%.3f", r.writes_dual); });
  row("**dual-write amplification**", [](const Scenario&, const Result& r) {
    return absl::StrFormat("**%.2f×**", r.writes_dual / r.writes_before);
  });
  row("distinct nodes per client write in dual-write", [](const Scenario&, const Result& r) {
    return absl::StrFormat("%.3f", r.dual_distinct_nodes);
  });
  row("shadow writes landing on a node that took the live write",
      [](const Scenario&, const Result& r) {
        const double shadow = r.writes_dual - r.writes_before;
        return absl::StrFormat("%.1f%%", 100.0 * (r.writes_dual - r.dual_distinct_nodes) / shadow);
      });
  row("shadow shards with exactly the owners of the same-numbered live shard",
      [](const Scenario& sc, const Result& r) {
        return absl::StrFormat("%u of %u", r.same_owner_shards, sc.s_new);
      });
  row("**peak node writes/s, fleet** (formula, EstimateReshard)",
      [](const Scenario&, const Result& r) {
        return absl::StrFormat("**%.0f**", r.est.peak_node_writes_per_s);
      });
  row("  of which backfill (throttle × RF × RG)", [](const Scenario& sc, const Result&) {
    return absl::StrFormat("%.0f", sc.throttle_dps * sc.rf * sc.groups);
  });
  row("  of which dual-write (2 × w × RF × RG)", [](const Scenario& sc, const Result&) {
    return absl::StrFormat("%.0f", 2 * sc.write_dps * sc.rf * sc.groups);
  });
  row("peak as a multiple of steady client node writes/s", [](const Scenario& sc, const Result& r) {
    return absl::StrFormat("%.0f×",
                           r.est.peak_node_writes_per_s / (sc.write_dps * sc.rf * sc.groups));
  });
  row("per node, uniform (fleet / nodes)", [](const Scenario&, const Result& r) {
    return absl::StrFormat("%.0f (%u nodes)", r.node_mean, r.total_nodes);
  });
  row("**per node max, real placement, averaged over the backfill**",
      [](const Scenario&, const Result& r) {
        return absl::StrFormat("**%.0f** (%s, %.2f× uniform)", r.node_max_avg,
                               r.node_max_avg_id.c_str(), r.node_max_avg / r.node_mean);
      });
  row("per node max, worst moment, 4 live shards at once", [](const Scenario&, const Result& r) {
    return absl::StrFormat("%.0f (%.2f× uniform)", r.node_max_conc, r.node_max_conc / r.node_mean);
  });
  row("**backfill duration** (docs / throttle, EstimateReshard)",
      [](const Scenario&, const Result& r) { return Duration(r.est.duration_s); });
  row("backfill bytes/s written at the throttle (all replicas)",
      [](const Scenario& sc, const Result&) {
        return Bytes(sc.throttle_dps * sc.doc_bytes * sc.rf * sc.groups) + "/s";
      });
  row("**per-shard CV of documents, S_old**", [](const Scenario& sc, const Result& r) {
    return absl::StrFormat("%.4f (S=%u)", r.cv_old, sc.s_old);
  });
  row("**per-shard CV of documents, S_new**", [](const Scenario& sc, const Result& r) {
    return absl::StrFormat("%.4f (S=%u)", r.cv_new, sc.s_new);
  });
  row("Poisson floor √(S/n) for reference, S_old / S_new", [](const Scenario& sc, const Result&) {
    return absl::StrFormat("%.4f / %.4f", std::sqrt(sc.s_old / static_cast<double>(kSample)),
                           std::sqrt(sc.s_new / static_cast<double>(kSample)));
  });
  row("per-node CV of replica documents, S_old / S_new", [](const Scenario&, const Result& r) {
    return absl::StrFormat("%.3f / %.3f", r.cv_node_old, r.cv_node_new);
  });
  std::printf(
      "\nSampled quantities use %llu synthetic keys `doc:0` … `doc:%llu` through "
      "`miroir::ShardForKey` and `miroir::OwnerTable` (node ids `r0`…, groups `g0`, `g1`, "
      "as `deploy/local/fleet.sh` names them; other ids give another placement and another "
      "per-node max). The \"worst moment\" row assumes the runner backfills "
      "`resharding.backfill_concurrency` = %u consecutive live shards at once with the "
      "throttle split over them by document count.\n",
      static_cast<unsigned long long>(kSample), static_cast<unsigned long long>(kSample - 1),
      kConcurrency);
  return 0;
}
