// The highest coordinator term a worker has seen (DESIGN §9a, issue 18): views,
// tasks and sessions carry the term of the coordinator that sent them (etcd: its
// leadership term; 0 on SQLite). One of a lower term comes from a deposed leader
// (SIGSTOPped, partitioned) whose late messages must change nothing, and is
// dropped. Pure; not thread-safe (the session's reader thread owns it).
#ifndef MIROIR_WORKER_TERM_GATE_H_
#define MIROIR_WORKER_TERM_GATE_H_

#include <cstdint>

namespace miroir {

class TermGate {
 public:
  // True when `term` is at least the highest seen, which it then becomes.
  bool Admit(uint64_t term) {
    if (term < highest_) return false;
    highest_ = term;
    return true;
  }
  uint64_t highest() const { return highest_; }

 private:
  uint64_t highest_ = 0;
};

}  // namespace miroir

#endif  // MIROIR_WORKER_TERM_GATE_H_
