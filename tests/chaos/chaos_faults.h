// Helpers of the fault-injection chaos scenarios (issue 8: 5, 9, 15-18, 20-22,
// 24, 25): a fleet plus writers built by hand (the scenarios need writers over
// chosen workers, long batch timeouts, extra key spaces), merged writer
// records/stats for one check, plan polling, worker logs and metrics.
// Test-thread only.
#ifndef MIROIR_TESTS_CHAOS_CHAOS_FAULTS_H_
#define MIROIR_TESTS_CHAOS_CHAOS_FAULTS_H_

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "chaos/chaos_util.h"
#include "harness/move_scenario.h"

namespace miroir::testing {

// Waits (bounded) until `w` has at least `n` acknowledged operations.
inline absl::Status WaitAcked(TestWriter& w, uint64_t n, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    WriterStats st = w.stats();
    if (st.acked() >= n) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("writer acked ", w.stats().acked(), " of ", n, " in time"));
}

// Starts a writer with `opts` and waits for its load (when load_first).
inline absl::StatusOr<std::unique_ptr<TestWriter>> StartWriter(const WriterOptions& opts) {
  auto w = std::make_unique<TestWriter>(opts);
  if (absl::Status s = w->Start(); !s.ok()) return s;
  if (opts.load_first) {
    if (absl::Status s = WaitAcked(*w, static_cast<uint64_t>(opts.keys), absl::Seconds(30));
        !s.ok()) {
      return s;
    }
  }
  return w;
}

// The records of several writers over disjoint key spaces, as one map.
inline std::map<std::string, KeyRecord> MergeRecords(const std::vector<TestWriter*>& writers) {
  std::map<std::string, KeyRecord> out;
  for (TestWriter* w : writers) {
    for (auto& [k, r] : w->records()) out[k] = r;
  }
  return out;
}

inline WriterStats MergeStats(const std::vector<TestWriter*>& writers) {
  WriterStats out;
  for (TestWriter* w : writers) {
    WriterStats s = w->stats();
    out.issued += s.issued;
    out.acked_puts += s.acked_puts;
    out.acked_deletes += s.acked_deletes;
    out.degraded += s.degraded;
    out.unknown += s.unknown;
    out.rejected += s.rejected;
    out.stream_failures += s.stream_failures;
    out.max_batch_latency = std::max(out.max_batch_latency, s.max_batch_latency);
  }
  return out;
}

inline void StopAll(const std::vector<TestWriter*>& writers) {
  for (TestWriter* w : writers) w->Stop();
  for (TestWriter* w : writers) w->Wait();
}

// The worker index whose log shows it started task `task_id` (last lease), or -1.
inline int WorkerRunningTask(Fleet& f, uint64_t task_id) {
  int found = -1;
  uint64_t best = 0;
  std::regex re(absl::StrCat("task ", task_id, " \\((TASK_[A-Z_]+)\\) lease ([0-9]+)"));
  for (int i = 0; i < f.worker_count(); ++i) {
    std::string log = f.worker(i)->ReadLog();
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
      uint64_t lease = std::stoull((*it)[2].str());
      if (lease >= best) {
        best = lease;
        found = i;
      }
    }
  }
  return found;
}

// Highest lease generation of `task_id` in worker i's log (0 if never ran there).
inline uint64_t MaxLeaseInLog(Fleet& f, int i, uint64_t task_id) {
  std::string log = f.worker(i)->ReadLog();
  std::regex re(absl::StrCat("task ", task_id, " \\((TASK_[A-Z_]+)\\) lease ([0-9]+)"));
  uint64_t max_lease = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
       ++it) {
    max_lease = std::max<uint64_t>(max_lease, std::stoull((*it)[2].str()));
  }
  return max_lease;
}

// The port a worker started with --metrics-listen 127.0.0.1:0 serves on (its log
// line "metrics on ... (port N)"), or 0.
inline int MetricsPort(Fleet& f, int i) {
  std::string log = f.worker(i)->ReadLog();
  std::smatch m;
  std::regex re("metrics on [^ ]+ \\(port ([0-9]+)\\)");
  if (std::regex_search(log, m, re)) return std::stoi(m[1].str());
  return 0;
}

// GET /metrics on 127.0.0.1:port (HTTP/1.0, bounded by SO_RCVTIMEO); "" on error.
inline std::string ScrapeMetrics(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      for (int i = 0; i < 1000; ++i) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return out;
}

// Value of an unlabelled counter/gauge line "name value" in a scrape (-1 if absent).
inline double MetricValue(const std::string& scrape, const std::string& name) {
  std::regex re("(^|\\n)" + name + "(\\{[^}]*\\})? ([0-9.eE+-]+)");
  std::smatch m;
  double total = -1;
  std::string::const_iterator from = scrape.begin();
  while (std::regex_search(from, scrape.end(), m, re)) {
    total = (total < 0 ? 0 : total) + std::stod(m[3].str());
    from = m[0].second;
  }
  return total;
}

// Every move state change of plan `id` in its event history (state entered,
// unix ms), oldest first; plan-level events are left out.
inline std::vector<std::pair<std::string, int64_t>> StateChanges(Fleet& f, uint64_t id) {
  std::vector<std::pair<std::string, int64_t>> out;
  auto p = f.GetPlan(id);
  if (!p.ok()) return out;
  for (const auto& e : p->history()) {
    if (e.move_id() != 0) out.emplace_back(e.to(), e.time_ms());
  }
  return out;
}

// "PLAN_DONE", or "PLAN_FAILED (first failed move's message)".
inline std::string PlanOutcome(const miroir::v1::Plan& end) {
  std::string out = miroir::v1::PlanState_Name(end.state());
  for (const auto& m : end.moves()) {
    if (m.state() == miroir::v1::MOVE_FAILED) {
      absl::StrAppend(&out, " (", m.message(), ")");
      break;
    }
  }
  return out;
}

// Every scenario states the plan outcome it expects (`expected`), and the test
// fails on any other: a plan that should have finished and did not is a
// failure, not a printed finding. The data promise (nothing lost, resurrected,
// mismatched; every node read) is asserted whatever the outcome; the whole
// check, wrong owners included, when the plan is DONE; when a plan is expected
// to fail (a gate refused it), a failed move's joining node may keep its
// partial copy (a FAILED plan cannot be aborted), so wrong-owner entries are
// bounded by the failed moves.
inline void ExpectPromiseAndOutcome(const miroir::v1::Plan& end, const CheckReport& report,
                                    miroir::v1::PlanState expected) {
  EXPECT_EQ(end.state(), expected)
      << "seed " << ChaosSeed() << ": expected " << miroir::v1::PlanState_Name(expected) << "\n"
      << DescribePlan(end);
  size_t failed_moves = 0;
  for (const auto& m : end.moves()) failed_moves += m.state() == miroir::v1::MOVE_FAILED ? 1 : 0;
  EXPECT_EQ(report.lost, 0u) << report.Summary();
  EXPECT_EQ(report.resurrected, 0u) << report.Summary();
  EXPECT_EQ(report.mismatched, 0u) << report.Summary();
  EXPECT_EQ(report.unreachable, 0u) << report.Summary();
  if (end.state() == miroir::v1::PLAN_DONE) {
    EXPECT_TRUE(report.ok()) << "seed " << ChaosSeed() << "\n" << report.Summary();
  } else {
    EXPECT_LE(report.wrong_owner, failed_moves) << report.Summary();
  }
}

}  // namespace miroir::testing

#endif  // MIROIR_TESTS_CHAOS_CHAOS_FAULTS_H_
