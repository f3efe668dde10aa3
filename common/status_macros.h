// Early-return helpers for absl::Status / absl::StatusOr, shared by the
// coordinator and the worker:
//
//   MIROIR_RETURN_IF_ERROR(store->SetFence(key, epoch));
//   MIROIR_ASSIGN_OR_RETURN(auto page, store->Scan(key, cursor, limit));
//
// MIROIR_ASSIGN_OR_RETURN declares a hidden temporary named after the line, so
// use it at most once per line.
#ifndef MIROIR_COMMON_STATUS_MACROS_H_
#define MIROIR_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"

#define MIROIR_RETURN_IF_ERROR(expr)         \
  do {                                       \
    absl::Status _miroir_st = (expr);        \
    if (!_miroir_st.ok()) return _miroir_st; \
  } while (0)

#define MIROIR_CONCAT_INNER(a, b) a##b
#define MIROIR_CONCAT(a, b) MIROIR_CONCAT_INNER(a, b)
#define MIROIR_ASSIGN_OR_RETURN(lhs, expr) \
  MIROIR_ASSIGN_OR_RETURN_IMPL(MIROIR_CONCAT(_miroir_sor_, __LINE__), lhs, expr)
#define MIROIR_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(*tmp)

#endif  // MIROIR_COMMON_STATUS_MACROS_H_
