#!/usr/bin/env bash
# Move cutover stall in sets (issue 19 item 4): SETS sets of RUNS runs of
#   move_driver --stall-only --rounds 3   (28 moves per run: add r9, remove it, x3)
# and, per set, the nearest-rank p50 / p90 / p99 / max of every move's stall
# (entering `paused` -> entering `active`, from the driver's MOVE_DRIVER_TRACE
# events), the moves at 50 ms or more, and lost / resurrected per run.
#
#   bash bench/move_stall_sets.sh [SETS=3] [RUNS=6]
#
# Prints a Markdown table; the traces stay in $BUILD/move_stall_sets/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
sets=${1:-3}
runs=${2:-6}
out="$BUILD/move_stall_sets"
mkdir -p "$out"
echo "| set | moves | stall p50 / p90 / p99 / max (ms) | moves ≥ 50 ms | per run p50/max (ms) | lost, resurrected |"
echo "|---|---|---|---|---|---|"
for s in $(seq 1 "$sets"); do
  : > "$out/set$s.stalls"
  per_run="" safety=""
  for r in $(seq 1 "$runs"); do
    MOVE_DRIVER_TRACE=1 "$BUILD/bench/move_driver" --stall-only --rounds 3 \
      > "$out/set$s.run$r.md" 2> "$out/set$s.run$r.trace"
    # event TIME move ID FROM -> TO (REASON): paused -> active per move.
    awk '$1 == "event" && $4 != 0 {
           if ($7 == "paused") p[$4] = $2;
           if ($7 == "active" && ($4 in p)) { print $2 - p[$4]; delete p[$4] }
         }' "$out/set$s.run$r.trace" > "$out/set$s.run$r.stalls"
    cat "$out/set$s.run$r.stalls" >> "$out/set$s.stalls"
    p50max=$(sort -n "$out/set$s.run$r.stalls" | awk '{v[NR]=$1} END {i=int((NR*50+99)/100); printf "%d/%d", v[i], v[NR]}')
    per_run="$per_run${per_run:+, }$p50max"
    ls=$(sed -n 's/.*acknowledged writes, lost \([0-9]*\), resurrected \([0-9]*\).*/\1,\2/p' "$out/set$s.run$r.md")
    safety="$safety${safety:+ }${ls:-?}"
  done
  sort -n "$out/set$s.stalls" | awk -v set="$s" -v per="$per_run" -v safe="$safety" '
    {v[NR]=$1; if ($1 >= 50) slow++}
    function pct(q) { i = int((NR*q + 99) / 100); if (i < 1) i = 1; return v[i] }
    END { printf "| %s | %d | %d / %d / %d / %d | %d | %s | %s |\n", set, NR, pct(50), pct(90), pct(99), v[NR], slow + 0, per, safe }'
done
