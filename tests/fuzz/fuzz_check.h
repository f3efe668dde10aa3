// What a fuzz target asserts beyond "no crash, no sanitizer report": a property
// the parser's contract promises (a round trip, an invariant of what it
// returned). A violation aborts with the message, so libFuzzer keeps the input.
#ifndef MIROIR_TESTS_FUZZ_FUZZ_CHECK_H_
#define MIROIR_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define MIROIR_FUZZ_CHECK(cond, what)                                         \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::fprintf(stderr, "fuzz property violated: %s (%s)\n", what, #cond); \
      std::abort();                                                           \
    }                                                                         \
  } while (0)

#endif  // MIROIR_TESTS_FUZZ_FUZZ_CHECK_H_
