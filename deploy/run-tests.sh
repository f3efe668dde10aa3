#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test
# but the `long` ones; then builds a second tree with AddressSanitizer +
# UndefinedBehaviorSanitizer and runs the unit tests there; finally reports (warns
# only) on files clang-format would change. Exits non-zero if anything failed.
#
#   bash deploy/run-tests.sh
#
# Environment: MIROIR_JOBS (default 2), MIROIR_SKIP_ASAN=1 to skip the sanitizer pass.
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

if [ "${MIROIR_SKIP_ASAN:-0}" != "1" ]; then
  echo "== build (build-asan/, ASan+UBSan), unit tests only"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIROIR_SANITIZE=ON \
    -DMIROIR_BUILD_BENCH=OFF
  # Only what the unit tests need: their executables (and miroir-ctl, which ctl_tests run).
  targets=()
  for t in common_tests coordinator_tests worker_tests ctl_tests client_tests deploy_tests \
           miroir_python; do
    if ninja -C build-asan -t query "$t" >/dev/null 2>&1; then targets+=("$t"); fi
  done
  ninja -C build-asan -j"$JOBS" "${targets[@]}"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
  if ! ctest --test-dir build-asan -L unit --output-on-failure -j"$JOBS"; then
    failed+=("ctest -L unit (ASan+UBSan)")
  fi
fi

echo "== format check (warnings only)"
if command -v clang-format >/dev/null 2>&1; then
  unformatted=0
  while IFS= read -r f; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
      unformatted=$((unformatted + 1))
      echo "format: $f differs from .clang-format"
    fi
  done < <(git ls-files '*.cc' '*.h' 2>/dev/null || true)
  echo "format: $unformatted file(s) would be reformatted (warning only)"
fi

if [ ${#failed[@]} -ne 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "OK: all tests passed"
