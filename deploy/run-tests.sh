#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test
# but the `long` ones (GCC, build/); then builds a second tree with clang
# (build-clang/: AddressSanitizer + UndefinedBehaviorSanitizer, -Wthread-safety
# -Werror, and the libFuzzer targets of tests/fuzz) and runs the unit tests and a
# short fixed run of each fuzzer there (ctest labels `unit` and `fuzz`); finally
# fails on any file clang-format would change. Exits non-zero if anything failed.
#
#   bash deploy/run-tests.sh
#
# Environment: MIROIR_JOBS (default 2), MIROIR_SKIP_CLANG=1 (or the older
# MIROIR_SKIP_ASAN=1) to skip the clang tree. docs/testing.md gives the timings.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${MIROIR_JOBS:-2}
# Share the compiler cache between clones in different directories (CI builds a
# fresh clone): paths are rewritten relative to the checkout and not hashed.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true

bash deploy/setup.sh

failed=()

echo "== build (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
ninja -C build -j"$JOBS"

echo "== tests: everything but long"
if ! ctest --test-dir build -LE long --output-on-failure -j"$JOBS"; then
  failed+=("ctest -LE long")
fi

if [ "${MIROIR_SKIP_CLANG:-${MIROIR_SKIP_ASAN:-0}}" != "1" ]; then
  # One tree for three checks (the CI budget has no room for a third build):
  # clang's thread-safety analysis of the ABSL_GUARDED_BY / ABSL_*_LOCKS_*
  # annotations (-Wthread-safety, an error like every warning), ASan+UBSan under
  # the unit tests, and the fuzzers (MIROIR_FUZZ), which link the same objects.
  echo "== build (build-clang/: clang, ASan+UBSan, -Wthread-safety -Werror, fuzzers)"
  clang_start=$(date +%s)
  cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DMIROIR_SANITIZE=ON -DMIROIR_FUZZ=ON -DMIROIR_BUILD_BENCH=OFF
  # Only what the unit tests need: their executables (and miroir-ctl, which ctl_tests
  # run), plus the fuzz targets.
  targets=()
  for t in common_tests coordinator_tests worker_tests ctl_tests client_tests deploy_tests \
           miroir_python miroir_fuzzers; do
    if ninja -C build-clang -t query "$t" >/dev/null 2>&1; then targets+=("$t"); fi
  done
  if ! ninja -C build-clang -j"$JOBS" "${targets[@]}"; then
    failed+=("build-clang (clang, -Wthread-safety -Werror)")
  else
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
    echo "== tests (build-clang/): unit and fuzz"
    if ! ctest --test-dir build-clang -L 'unit|fuzz' --output-on-failure -j"$JOBS"; then
      failed+=("ctest -L 'unit|fuzz' (clang, ASan+UBSan)")
    fi
  fi
  echo "== clang tree: $(( $(date +%s) - clang_start )) s (configure, build, unit and fuzz tests)"
fi

echo "== format check"
# The tree is formatted (one commit of its own); a file that differs from
# .clang-format fails the run. Fix with: clang-format -i FILE
if command -v clang-format >/dev/null 2>&1; then
  unformatted=0
  while IFS= read -r f; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
      unformatted=$((unformatted + 1))
      echo "format: $f differs from .clang-format (clang-format -i $f)"
    fi
  done < <(git ls-files '*.cc' '*.h' 2>/dev/null || true)
  if [ "$unformatted" -ne 0 ]; then
    failed+=("format: $unformatted file(s) differ from .clang-format")
  fi
else
  failed+=("format: clang-format is not installed (deploy/setup.sh)")
fi

if [ ${#failed[@]} -ne 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "OK: all tests passed"
