#include "coordinator/cutover.h"

#include <algorithm>
#include <map>

namespace miroir::coordinator::cutover {

bool StallExceeded(int64_t paused_at_ms, int64_t now_ms, absl::Duration max_write_stall) {
  return paused_at_ms > 0 && absl::Milliseconds(now_ms - paused_at_ms) > max_write_stall;
}

int64_t StallDeadlineMs(int64_t paused_at_ms, absl::Duration max_write_stall) {
  return paused_at_ms + absl::ToInt64Milliseconds(max_write_stall) + 1;
}

uint32_t FencedWithCurrentWatermark(const Watermarks& copied, const Watermarks& fences,
                                    const Strings* only) {
  std::map<std::string, std::string> fenced;
  for (const auto& f : fences) fenced[f.node()] = f.incarnation();
  uint32_t good = 0;
  for (const auto& w : copied) {
    if (only != nullptr && std::find(only->begin(), only->end(), w.node()) == only->end()) {
      continue;
    }
    auto it = fenced.find(w.node());
    if (it != fenced.end() && it->second == w.incarnation()) ++good;
  }
  return good;
}

const v1::Watermark* MarkOf(const Watermarks& marks, const std::string& node) {
  const v1::Watermark* found = nullptr;
  for (const auto& m : marks) {
    if (m.node() == node) found = &m;
  }
  return found;
}

Strings FencedSources(const Watermarks& fences, const Strings& sources) {
  Strings out;
  for (const auto& f : fences) {
    if (std::find(sources.begin(), sources.end(), f.node()) != sources.end()) {
      out.push_back(f.node());
    }
  }
  return out;
}

bool Acked(bool acks_ready, uint64_t wait_epoch, const AckLookup& all_live_acked) {
  return acks_ready && (wait_epoch == 0 || all_live_acked(wait_epoch));
}

}  // namespace miroir::coordinator::cutover
