#!/usr/bin/env bash
# HA benchmarks of issue 18 (docs/benchmarks/ha.md), on two local fleets side by
# side (deploy/local/fleet.sh): an HA one (HA=1: 3-member etcd, 3 coordinators)
# and a plain one (one coordinator on SQLite), both with 4 redis-server nodes in
# 2 groups and 2 workers, the same index (SHARDS, RF) and the same config but the
# state backend.
#
#   1. failover: KILLS times, SIGKILL the leading coordinator, poll
#      `miroir-ctl status` through the list until a coordinator answers as the
#      leader, read from the logs when the new leader won the campaign and when
#      both workers re-registered with it, restart the killed one (a standby
#      now), wait SETTLE s; no plan runs meanwhile;
#   2. the demo writer writes at RATE writes/s through the whole of 1 (after
#      loading KEYS documents); its acknowledged / unknown-outcome counts and its
#      final check of the promise (lost, resurrected) on every node;
#   3. commit latency: COMMITS mutations (`index alias set` / `index alias
#      remove`, alternately) and as many reads (`index list`) through
#      miroir-ctl on each fleet, interleaved (HA, SQLite, HA, ...) so both see
#      the same machine load; net per commit = mutation − read (the read pays
#      the same ctl start-up and connection); then RPC_COMMITS SetAlias /
#      RemoveAlias and ListIndexes calls on one gRPC channel per fleet (no ctl
#      process; PYGRPC, a python3 with grpcio), with etcd's own fsync counters;
#   4. a 16-move plan: add-node r4 to g0 then remove-node r4 on each fleet
#      (S = 53, RF = 1: 16 moves each, checked with --dry-run), same data and
#      throttle (THROTTLE) on both; durations from the plan's own times: created
#      -> the last move active (every cutover done) and created -> ended (which
#      includes the cleanup after migration.retain_moved_shard, 5 s);
#   5. (CUTOVER_KILL=1) one more kill on the HA fleet, the moment the leader
#      logs a move entering `paused` (add-node r5 throttled to CUTOVER_THROTTLE
#      documents/s per copy, the writer at RATE): writes held on the paused
#      shard fail past migration.max_write_stall (DESIGN §9a) — measured apart.
#
# Prints a summary at the end; raw numbers in OUT/results (OUT below).
#
#   nice bash bench/ha_failover.sh
#
# Environment: MIROIR_BIN_DIR (<repo>/build: coordinator/, worker/, ctl/,
# deploy/miroir-demo-writer), MIROIR_LOCAL_DIR (OUT: /tmp/miroir-habench; the
# fleets in OUT/ha and OUT/sqlite, wiped at start), KILLS (12), SETTLE (4 s),
# RATE (2000), KEYS (20000), COMMITS (150), SHARDS (53), RF (1), MOVES (16: the
# expected move count), THROTTLE (0 = unthrottled), ETCD_LEASE_TTL (2s),
# LEASE_TTL (8s, both fleets), CUTOVER_KILL (1), CUTOVER_THROTTLE (100),
# RPC_COMMITS (300), PYGRPC (/usr/bin/python3: Debian's python3-grpcio).
# Every process started here is stopped at the end, also on error or ^C.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MIROIR_BIN_DIR="${MIROIR_BIN_DIR:-$REPO/build}"
OUT="${MIROIR_LOCAL_DIR:-/tmp/miroir-habench}"
FLEET="$REPO/deploy/local/fleet.sh"
CTL="$MIROIR_BIN_DIR/ctl/miroir-ctl"
WRITER="$MIROIR_BIN_DIR/deploy/miroir-demo-writer"
KILLS="${KILLS:-12}"
SETTLE="${SETTLE:-4}"
RATE="${RATE:-2000}"
KEYS="${KEYS:-20000}"
COMMITS="${COMMITS:-150}"
MOVES="${MOVES:-16}"
THROTTLE="${THROTTLE:-0}"
CUTOVER_KILL="${CUTOVER_KILL:-1}"
CUTOVER_THROTTLE="${CUTOVER_THROTTLE:-100}"
PYGRPC="${PYGRPC:-/usr/bin/python3}"  # a python3 with grpcio (Debian python3-grpcio)
export SHARDS="${SHARDS:-53}" RF="${RF:-1}" LEASE_TTL="${LEASE_TTL:-8s}"
export ETCD_LEASE_TTL="${ETCD_LEASE_TTL:-2s}"
HA_DIR="$OUT/ha"
SQ_DIR="$OUT/sqlite"
RES="$OUT/results"

say() { echo "ha-bench: $*" >&2; }
die() { say "error: $*"; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
us_now() { local t=$EPOCHREALTIME; echo "${t/./}"; }  # microseconds
log_ms() { date -u -d "$1" +%s%3N; }                     # 2026-12-03T18:02:24.720Z -> unix ms

ha() { MIROIR_LOCAL_DIR="$HA_DIR" HA=1 bash "$FLEET" "$@"; }
sq() { MIROIR_LOCAL_DIR="$SQ_DIR" HA=0 bash "$FLEET" "$@"; }

# ---- cleanup: every process started here, by its pid ------------------------
BG_PIDS=()
cleanup() {
  local p
  for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
    kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
  done
  for _ in $(seq 1 30); do
    local any=0
    for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do kill -0 "$p" 2>/dev/null && any=1; done
    [ "$any" = 0 ] && break
    sleep 0.1
  done
  for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  [ -d "$HA_DIR/pids" ] && ha stop >/dev/null 2>&1
  [ -d "$SQ_DIR/pids" ] && sq stop >/dev/null 2>&1
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for b in "$CTL" "$WRITER" "$MIROIR_BIN_DIR/coordinator/miroir-coordinator" \
         "$MIROIR_BIN_DIR/worker/miroir-worker"; do
  [ -x "$b" ] || die "$b is not built (MIROIR_BIN_DIR)"
done
command -v python3 >/dev/null || die "python3 is needed (JSON, the leader forwarder)"

# ---- small helpers -------------------------------------------------------------

# n p50 mean se (standard error of the mean) min max of the numbers in a file.
stats() {
  sort -n "$1" | awk '{v[NR]=$1; s+=$1; q+=$1*$1} END {
    if (NR == 0) { print "n=0"; exit }
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    mu = s/NR; var = (NR > 1) ? (q - NR*mu*mu) / (NR-1) : 0; if (var < 0) var = 0
    printf "n=%d p50=%.1f mean=%.1f se=%.1f min=%.1f max=%.1f\n", NR, m, mu, sqrt(var/NR), v[1], v[NR] }'
}

# etcd's own counters, over the three members: WAL fsyncs (count, seconds),
# backend commits (count, seconds), proposals committed (the highest member's).
etcd_metrics() {
  local ep
  for ep in $(tr , ' ' < "$HA_DIR/etcd.endpoints"); do
    curl -s --max-time 2 "http://$ep/metrics"
  done | awk '
    /^etcd_disk_wal_fsync_duration_seconds_count/ {fc += $2}
    /^etcd_disk_wal_fsync_duration_seconds_sum/ {fs += $2}
    /^etcd_disk_backend_commit_duration_seconds_count/ {bc += $2}
    /^etcd_disk_backend_commit_duration_seconds_sum/ {bs += $2}
    /^etcd_server_proposals_committed_total/ {if ($2 > p) p = $2}
    END {printf "%d %.6f %d %.6f %d\n", fc, fs, bc, bs, p}'
}
field() { stats "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# A JSON value by a python expression on `j` (stdin).
jq_() { python3 -c "import json,sys
j=json.load(sys.stdin)
v=$1
print(v if not isinstance(v,(dict,list)) else json.dumps(v))"; }

# Starts the demo writer in the background at $RATE; its pid in W (and BG_PIDS).
start_writer() {  # coordinator workers keys duration report-name log fleet-dir
  local a=()
  [ -f "$7/store.password" ] && a=(--store-username miroir --store-password-file "$7/store.password")
  "$WRITER" --coordinator "$1" --workers "$2" --keys "$3" --rate "$RATE" --duration "$4" \
    --report-json "$RES/$5.json" "${a[@]}" >"$RES/$5.out" 2>"$6" &
  W=$!
  BG_PIDS+=("$W")
}

# The last "writer: N acknowledged, M unknown" line's N (0 when none yet).
writer_acked() {
  grep -o '[0-9]* acknowledged' "$1" 2>/dev/null | tail -1 | cut -d' ' -f1 | grep . || echo 0
}

# Wait (bounded) until the writer logged >= KEYS acknowledged (its load done).
wait_load() {  # writer-log pid keys
  local bound=$(( $3 * 10 / (RATE > 0 ? RATE : 1000) + 120 )) n
  for _ in $(seq 1 $((bound * 5))); do
    n=$(writer_acked "$1")
    [ "$n" -ge "$3" ] && return 0
    kill -0 "$2" 2>/dev/null || { say "the writer exited during the load (see $1)"; return 1; }
    sleep 0.2
  done
  say "the load of $3 documents did not finish within ${bound}s ($n acknowledged)"
  return 1
}

# SIGTERM the writer and wait (bounded: its check waits for quiescence).
stop_writer() {  # pid
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 1 1800); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then say "the writer did not finish its check in 180 s"; kill -KILL "$1"; fi
  wait "$1" 2>/dev/null
}

wait_workers() {  # fleet function: both workers registered
  for _ in $(seq 1 150); do
    local n
    n=$("$CTL" --coordinator "$(cat "$2/coordinator.address")" --timeout 2s --output json status \
          2>/dev/null | jq_ 'len(j.get("workers",[]))' 2>/dev/null)
    [ "${n:-0}" -ge 2 ] && return 0
    sleep 0.2
  done
  die "$1: the workers did not register within 30 s"
}

# ---- 0. the two fleets ---------------------------------------------------------
# OUT is wiped: only a directory this script made (its marker) or an empty one.
if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/.ha-bench" ]; then
  die "$OUT exists and was not made by this script; choose another MIROIR_LOCAL_DIR"
fi
if [ -f "$OUT/.ha-bench" ]; then
  for d in "$HA_DIR" "$SQ_DIR"; do  # a fleet left running by an earlier run
    [ -d "$d/pids" ] && MIROIR_LOCAL_DIR="$d" bash "$FLEET" stop >/dev/null 2>&1
  done
fi
rm -rf "$OUT"
mkdir -p "$RES"
touch "$OUT/.ha-bench"
exec > >(tee -a "$RES/run.out") 2>&1
say "$(date -u +%FT%TZ) commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null) binaries $($CTL --version)"
say "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); load $(cut -d' ' -f1-3 /proc/loadavg)"
say "KILLS=$KILLS SETTLE=$SETTLE RATE=$RATE KEYS=$KEYS COMMITS=$COMMITS SHARDS=$SHARDS RF=$RF THROTTLE=$THROTTLE ETCD_LEASE_TTL=$ETCD_LEASE_TTL LEASE_TTL=$LEASE_TTL"
ha start || die "the HA fleet did not start (logs in $HA_DIR/logs)"
ha init >/dev/null || die "cluster init on the HA fleet failed"
sq start || die "the SQLite fleet did not start (logs in $SQ_DIR/logs)"
sq init >/dev/null || die "cluster init on the SQLite fleet failed"
wait_workers ha "$HA_DIR"
wait_workers sqlite "$SQ_DIR"
HA_LIST="$(cat "$HA_DIR/coordinator.address")"
SQ_ADDR="$(cat "$SQ_DIR/coordinator.address")"
HA_WORKERS="$(paste -sd, "$HA_DIR/workers")"
SQ_WORKERS="$(paste -sd, "$SQ_DIR/workers")"
say "HA fleet: coordinators $HA_LIST, etcd $(cat "$HA_DIR/etcd.endpoints"); SQLite fleet: $SQ_ADDR"

# The writer's final check reads one coordinator: on the HA fleet it goes through
# a loopback forwarder that sends each new connection to whichever coordinator
# leads (fleet.sh leader), as deploy/local/demo.sh does.
MIROIR_LOCAL_DIR="$HA_DIR" python3 "$REPO/deploy/local/leader_forward.py" "$FLEET" \
    "$HA_DIR/leader-forward.port" >>"$HA_DIR/logs/leader-forward.log" 2>&1 &
FWD_PID=$!
BG_PIDS+=("$FWD_PID")
for _ in $(seq 1 100); do [ -s "$HA_DIR/leader-forward.port" ] && break; sleep 0.1; done
[ -s "$HA_DIR/leader-forward.port" ] || die "the leader forwarder did not start"
HA_CHECK="127.0.0.1:$(cat "$HA_DIR/leader-forward.port")"

# ---- 1. load the SQLite fleet (same documents as the HA fleet gets in 2) -----
say "loading $KEYS documents into the SQLite fleet at $RATE/s"
start_writer "$SQ_ADDR" "$SQ_WORKERS" "$KEYS" 600 sqlite-load "$SQ_DIR/logs/writer-load.log" "$SQ_DIR"
wait_load "$SQ_DIR/logs/writer-load.log" "$W" "$KEYS" || die "could not load the SQLite fleet"
stop_writer "$W"
say "SQLite fleet load: $(jq_ '"%s acknowledged, %s unknown, %.0f writes/s, lost %s, resurrected %s, checked %s" % (j["acknowledged_writes"], j["unknown_outcome"], j["writes_per_s"], j.get("lost"), j.get("resurrected"), j["checked"])' < "$RES/sqlite-load.json")"

# ---- 2. failovers under the writer (HA fleet) -----------------------------------
say "HA fleet: loading $KEYS documents, then writing at $RATE/s while the leader is killed $KILLS times"
start_writer "$HA_CHECK" "$HA_WORKERS" "$KEYS" 900 ha-writer "$HA_DIR/logs/writer.log" "$HA_DIR"
wait_load "$HA_DIR/logs/writer.log" "$W" "$KEYS" || die "could not load the HA fleet"
sleep 2
writes_start_ms=$(now_ms)

# One failover, in three steps: fo_prepare (the leader "NAME HOST:PORT PID", the
# log lengths before the kill), fo_kill (SIGKILL, its time taken without a fork),
# fo_measure: until a coordinator answers `status` as the leader (its own address
# = the leader it names); the new leader's "etcd leadership won" and both
# workers' "registered with coordinator" log lines. fo_measure appends
# "KILLED NEW answer_ms won_ms listening_ms workers_ms" to its file and sets NEW_NAME.
fo_prepare() {  # leader-line
  local k
  read -r FO_NAME FO_ADDR FO_PID <<<"$1"
  if [ "$FO_NAME" = unknown ] || [ -z "${FO_PID:-}" ] || ! kill -0 "$FO_PID" 2>/dev/null; then
    say "the leader '$1' is not ours or not alive"
    return 1
  fi
  KILLED_N=${FO_NAME#coordinator}
  FO_WL0=$(wc -l < "$HA_DIR/logs/worker0.log"); FO_WL1=$(wc -l < "$HA_DIR/logs/worker1.log")
  FO_CL=()
  for k in 0 1 2; do FO_CL+=("$(wc -l < "$HA_DIR/logs/coordinator$k.log")"); done
}
fo_kill() {
  local t=$EPOCHREALTIME
  kill -KILL "$FO_PID"
  FO_TKILL=$(( ${t/./} / 1000 ))
}
fo_measure() {  # result-file
  local name=$FO_NAME addr=$FO_ADDR t_kill=$FO_TKILL out first resolved leader t_ans="" new="" k
  local wl0=$FO_WL0 wl1=$FO_WL1 cl=("${FO_CL[@]}")
  for _ in $(seq 1 300); do  # 30 s at most
    if out=$("$CTL" --coordinator "$HA_LIST" --timeout 1s status 2>/dev/null); then
      first=$(echo "$out" | head -1)   # coordinator: ANSWERED (leader LEADER)
      resolved=$(echo "$first" | sed -n 's/^coordinator: \([^ ]*\) (leader \([^)]*\)).*/\1/p')
      leader=$(echo "$first" | sed -n 's/^coordinator: \([^ ]*\) (leader \([^)]*\)).*/\2/p')
      if [ -n "$resolved" ] && [ "$resolved" = "$leader" ] && [ "$leader" != "$addr" ]; then
        t_ans=$(now_ms); new=$leader; break
      fi
    fi
    sleep 0.05
  done
  [ -n "$t_ans" ] || { say "no new leader answered within 30 s of killing $name"; return 1; }
  local new_name=unknown won_ms=-1 listen_ms=-1 w_ms=-1 ts
  for k in 0 1 2; do
    [ "$(cat "$HA_DIR/coordinator$k.address")" = "$new" ] || continue
    new_name=coordinator$k
    NEW_NAME=$new_name
    ts=$(tail -n +"$((cl[k] + 1))" "$HA_DIR/logs/coordinator$k.log" | grep -m1 'etcd leadership won' | cut -d' ' -f1)
    [ -n "$ts" ] && won_ms=$(( $(log_ms "$ts") - t_kill ))
    ts=$(tail -n +"$((cl[k] + 1))" "$HA_DIR/logs/coordinator$k.log" | grep -m1 'miroir-coordinator listening on' | cut -d' ' -f1)
    [ -n "$ts" ] && listen_ms=$(( $(log_ms "$ts") - t_kill ))
  done
  # Both workers re-registered (bounded: 15 s).
  local r0="" r1=""
  for _ in $(seq 1 150); do
    r0=$(tail -n +"$((wl0 + 1))" "$HA_DIR/logs/worker0.log" | grep -m1 'registered with coordinator' | cut -d' ' -f1)
    r1=$(tail -n +"$((wl1 + 1))" "$HA_DIR/logs/worker1.log" | grep -m1 'registered with coordinator' | cut -d' ' -f1)
    [ -n "$r0" ] && [ -n "$r1" ] && break
    sleep 0.1
  done
  if [ -n "$r0" ] && [ -n "$r1" ]; then
    w_ms=$(( $(log_ms "$r0") > $(log_ms "$r1") ? $(log_ms "$r0") : $(log_ms "$r1") ))
    w_ms=$(( w_ms - t_kill ))
  else
    say "the workers did not both re-register within 15 s of the new leader answering"
  fi
  echo "$name $new_name $((t_ans - t_kill)) $won_ms $listen_ms $w_ms" >> "$1"
  say "killed $name ($addr): $new_name answered as leader after $((t_ans - t_kill)) ms (won the campaign at +$won_ms ms, serving at +$listen_ms ms, both workers re-registered at +$w_ms ms)"
}

: > "$RES/failover.txt"
fail_kills=0
for i in $(seq 1 "$KILLS"); do
  if fo_prepare "$(ha leader)"; then
    fo_kill
    fo_measure "$RES/failover.txt" || fail_kills=$((fail_kills + 1))
  else
    fail_kills=$((fail_kills + 1))
  fi
  ha restart-coordinator "$KILLED_N" >/dev/null 2>&1 || say "could not restart coordinator$KILLED_N"
  sleep "$SETTLE"
done
writes_end_ms=$(now_ms)
say "stopping the writer; its check reads every node"
stop_writer "$W"
cut -d' ' -f3 "$RES/failover.txt" > "$RES/failover-answer.ms"
cut -d' ' -f4 "$RES/failover.txt" | grep -v '^-1$' > "$RES/failover-won.ms"
cut -d' ' -f5 "$RES/failover.txt" | grep -v '^-1$' > "$RES/failover-listening.ms"
cut -d' ' -f6 "$RES/failover.txt" | grep -v '^-1$' > "$RES/failover-workers.ms"

# ---- 3. commit latency: etcd vs SQLite, interleaved -------------------------------
HA_LEADER=$(ha leader | cut -d' ' -f2)
say "commit latency: $COMMITS alias mutations and $COMMITS reads on each fleet (HA through its leader $HA_LEADER)"
for f in ha.mut ha.read ha.net sqlite.mut sqlite.read sqlite.net; do : > "$RES/commit-$f.us"; done
commit_errors=0
T_US=""
timed() {  # cmd... ; sets T_US (empty on failure)
  local t0 t1
  T_US=""
  t0=$(us_now)
  if "$@" >/dev/null 2>>"$RES/commit-errors.log"; then
    t1=$(us_now); T_US=$(( t1 - t0 ))
  else
    commit_errors=$((commit_errors + 1))
  fi
}
for i in $(seq 1 "$COMMITS"); do
  if [ $((i % 2)) = 1 ]; then mut=(index alias set --alias bench-alias --index products)
  else mut=(index alias remove --alias bench-alias); fi
  if [ $((i % 4)) -lt 2 ]; then order="ha sqlite"; else order="sqlite ha"; fi
  for b in $order; do
    if [ "$b" = ha ]; then co=$HA_LEADER; else co=$SQ_ADDR; fi
    timed "$CTL" --coordinator "$co" "${mut[@]}"; m=$T_US
    timed "$CTL" --coordinator "$co" index list; r=$T_US
    [ -n "$m" ] && echo "$m" >> "$RES/commit-$b.mut.us"
    [ -n "$r" ] && echo "$r" >> "$RES/commit-$b.read.us"
    [ -n "$m" ] && [ -n "$r" ] && echo $(( m - r )) >> "$RES/commit-$b.net.us"
  done
done
for f in ha.mut ha.read ha.net sqlite.mut sqlite.read sqlite.net; do
  awk '{printf "%.2f\n", $1 / 1000}' "$RES/commit-$f.us" > "$RES/commit-$f.ms"
done

# ---- 3b. the same commits without the ctl process: one gRPC channel each ------
# SetAlias / RemoveAlias (a commit and its epoch) and ListIndexes (a read) timed
# in one client process (Debian's python3-grpcio; the protobuf messages are two
# strings, encoded by hand), interleaved as above.
RPC_COMMITS="${RPC_COMMITS:-300}"
: > "$RES/rpc.txt"
if "$PYGRPC" -c 'import grpc' 2>/dev/null; then
  say "commit latency over gRPC: $RPC_COMMITS SetAlias/RemoveAlias and ListIndexes on each fleet"
  etcd_metrics > "$RES/etcd-metrics-before.txt"
  "$PYGRPC" - "$RPC_COMMITS" "ha=$HA_LEADER" "sqlite=$SQ_ADDR" > "$RES/rpc.txt" 2>"$RES/rpc.err" <<'PY' ||
import sys, time, grpc
n = int(sys.argv[1])
fleets = [a.split("=", 1) for a in sys.argv[2:]]
def s(field, v):  # a protobuf string field
    b = v.encode()
    return bytes([field << 3 | 2, len(b)]) + b
ident = lambda b: b
calls = {}
for name, addr in fleets:
    ch = grpc.insecure_channel(addr)
    grpc.channel_ready_future(ch).result(timeout=10)
    u = lambda m, ch=ch: ch.unary_unary("/miroir.v1.Coordinator/" + m,
                                         request_serializer=ident, response_deserializer=ident)
    calls[name] = (u("SetAlias"), u("RemoveAlias"), u("ListIndexes"))
    calls[name][2](b"", timeout=10)  # warm the channel
for i in range(n):
    order = fleets if (i // 2) % 2 == 0 else fleets[::-1]
    for name, _ in order:
        set_alias, remove_alias, list_indexes = calls[name]
        t0 = time.perf_counter()
        if i % 2 == 0:
            set_alias(s(1, "bench-rpc") + s(2, "products"), timeout=10)
        else:
            remove_alias(s(1, "bench-rpc"), timeout=10)
        t1 = time.perf_counter()
        list_indexes(b"", timeout=10)
        t2 = time.perf_counter()
        print(name, "%.0f" % ((t1 - t0) * 1e6), "%.0f" % ((t2 - t1) * 1e6))
PY
    say "the gRPC commit timing failed: $(tail -3 "$RES/rpc.err")"
  etcd_metrics > "$RES/etcd-metrics-after.txt"
  for b in ha sqlite; do
    awk -v b=$b '$1 == b {printf "%.3f\n", $2 / 1000}' "$RES/rpc.txt" > "$RES/rpc-$b.mut.ms"
    awk -v b=$b '$1 == b {printf "%.3f\n", $3 / 1000}' "$RES/rpc.txt" > "$RES/rpc-$b.read.ms"
    awk -v b=$b '$1 == b {printf "%.3f\n", ($2 - $3) / 1000}' "$RES/rpc.txt" > "$RES/rpc-$b.net.ms"
  done
else
  say "no python3 with grpc ($PYGRPC): the gRPC commit timing is skipped"
fi

# ---- 4. a 16-move plan: etcd vs SQLite --------------------------------------------
# Runs one plan to the end on a fleet; appends "fleet kind moves documents
# to_last_cutover_ms to_done_ms wall_ms max_stall_ms p50_stall_ms events state"
# to plans.txt: to_last_cutover = created -> the last move's final_delta -> active
# (every move cut over), to_done = created -> ended (includes the cleanup that
# waits migration.retain_moved_shard), wall = ctl call -> done seen by polling.
plan_row() {  # plan-json-file
  python3 - "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
p = j.get("plan") or j
m = p["moves"]
h = j.get("history") or p.get("history") or []
act = [e["time_ms"] for e in h if e.get("to") == "active" and e.get("move_id")]
st = sorted(x["stall_ms"] for x in m)
print(len(m), sum(x["est_documents"] for x in m),
      (max(act) - p["created_ms"]) if act else -1,
      (p["ended_ms"] - p["created_ms"]) if p["ended_ms"] else -1,
      st[-1] if st else 0, st[len(st) // 2] if st else 0, len(h))
PY
}
run_plan() {  # fleet-name coordinator kind(add|remove) node
  local fl=$1 co=$2 kind=$3 node=$4 args out id moves t0 pj="" state="" row
  if [ "$kind" = add ]; then
    local addr
    if [ "$fl" = ha ]; then addr=$(ha add-node "$node"); else addr=$(sq add-node "$node"); fi || return 1
    args=(plan add-node --id "$node" --group g0 --address "$addr" --throttle "$THROTTLE")
  else
    args=(plan remove-node --id "$node" --throttle "$THROTTLE")
  fi
  moves=$("$CTL" --coordinator "$co" --output json "${args[@]}" --dry-run | jq_ 'len(j["moves"])')
  [ "$moves" = "$MOVES" ] || say "$fl $kind-node $node: $moves moves (expected $MOVES)"
  t0=$(now_ms)
  out=$("$CTL" --coordinator "$co" --output json "${args[@]}") || { say "$fl: ${args[*]} refused: $out"; return 1; }
  id=$(echo "$out" | jq_ '(j.get("plan") or j)["id"]')
  for _ in $(seq 1 2400); do  # 10 min at most
    if pj=$("$CTL" --coordinator "$co" --timeout 5s --output json plan show "$id" 2>/dev/null); then
      state=$(echo "$pj" | jq_ '(j.get("plan") or j)["state"]')
      case "$state" in done|failed|aborted) break ;; esac
    fi
    sleep 0.25
  done
  local wall=$(( $(now_ms) - t0 ))
  echo "$pj" > "$RES/plan-$fl-$kind.json"
  row=$(plan_row "$RES/plan-$fl-$kind.json" | awk -v w="$wall" '{print $1, $2, $3, $4, w, $5, $6, $7}')
  echo "$fl $kind $row $state" >> "$RES/plans.txt"
  say "$fl $kind-node $node: plan $id $state, $(echo "$row" | awk '{printf "%s moves, %s documents, last cutover at %s ms, done at %s ms (wall %s ms), cutover stall max %s ms", $1, $2, $3, $4, $5, $6}')"
  sleep 2
}
: > "$RES/plans.txt"
run_plan ha "$HA_LIST" add r4 || say "the HA add-node plan did not run"
run_plan sqlite "$SQ_ADDR" add r4 || say "the SQLite add-node plan did not run"
run_plan ha "$HA_LIST" remove r4 || say "the HA remove-node plan did not run"
run_plan sqlite "$SQ_ADDR" remove r4 || say "the SQLite remove-node plan did not run"

# ---- 5. a kill while a shard is paused for its cutover (HA fleet) -----------------
# The leader's log is polled every 20 ms for a move entering `paused`; the kill
# follows at once (a pause lasts ~50-250 ms here: the final delta is copied at
# the plan's throttle). Once the new leader answers, the plan's throttle is
# lifted so that it ends quickly.
if [ "$CUTOVER_KILL" = 1 ]; then
  say "cutover kill: add-node r5 throttled to $CUTOVER_THROTTLE documents/s, writer at $RATE/s, leader killed while a move is paused"
  start_writer "$HA_CHECK" "$HA_WORKERS" 4000 600 ha-cutover-writer \
    "$HA_DIR/logs/writer-cutover.log" "$HA_DIR"
  : > "$RES/cutover-failover.txt"
  if wait_load "$HA_DIR/logs/writer-cutover.log" "$W" 4000; then
    sleep 1
    lline=$(ha leader)
    lname=${lline%% *}
    llog="$HA_DIR/logs/$lname.log"
    from=$(( $(wc -l < "$llog") + 1 ))
    addr=$(ha add-node r5)
    out=$("$CTL" --coordinator "$HA_LIST" --output json plan add-node --id r5 --group g0 \
            --address "$addr" --throttle "$CUTOVER_THROTTLE")
    cid=$(echo "$out" | jq_ '(j.get("plan") or j)["id"]')
    caught=""
    # tail -F streams the leader's log as it is written (spdlog flushes each
    # line); the kill follows the first "-> paused:" line without a fork.
    if fo_prepare "$lline"; then
      exec {tailfd}< <(exec tail -n +"$from" -F "$llog" 2>/dev/null)
      tail_pid=$!
      BG_PIDS+=("$tail_pid")
      deadline=$((SECONDS + 120))
      while [ "$SECONDS" -lt "$deadline" ]; do
        IFS= read -r -t 5 -u "$tailfd" line
        rc=$?
        [ "$rc" -gt 128 ] && continue  # nothing for 5 s
        [ "$rc" = 0 ] || break         # tail ended
        case "$line" in *"-> paused:"*) fo_kill; caught=$line; break ;; esac
      done
      kill "$tail_pid" 2>/dev/null
      exec {tailfd}<&-
    fi
    if [ -n "$caught" ]; then
      fo_measure "$RES/cutover-failover.txt" || say "the cutover failover was not measured"
      echo "kill at $(date -u -d "@$((FO_TKILL / 1000)).$(printf %03d $((FO_TKILL % 1000)))" +%T.%3N)" >> "$RES/cutover-failover.txt"
      echo "$caught" > "$RES/cutover-caught.txt"
      # What the killed leader logged last about moves (did it die inside the pause?).
      tail -n +"$from" "$llog" | grep 'move [0-9]* (plan' | tail -n 3 > "$RES/cutover-killed-last.txt"
      ha restart-coordinator "$KILLED_N" >/dev/null 2>&1 || say "could not restart coordinator$KILLED_N"
      sleep 3
      grep -h 'max_write_stall' "$HA_DIR/logs/${NEW_NAME:-none}.log" > "$RES/cutover-stall-lines.txt" 2>/dev/null
      "$CTL" --coordinator "$HA_LIST" plan update "$cid" --throttle 1000000 >/dev/null ||
        say "could not lift the throttle of plan $cid"
      st=""
      for _ in $(seq 1 600); do  # the plan ends (5 min at most)
        st=$("$CTL" --coordinator "$HA_LIST" --timeout 2s --output json plan show "$cid" 2>/dev/null |
               jq_ '(j.get("plan") or j)["state"]' 2>/dev/null)
        case "$st" in done|failed|aborted) break ;; esac
        sleep 0.5
      done
      echo "$st" > "$RES/cutover-plan-state.txt"
      grep -h 'max_write_stall' "$HA_DIR/logs/${NEW_NAME:-none}.log" > "$RES/cutover-stall-lines.txt" 2>/dev/null
      "$CTL" --coordinator "$HA_LIST" --output json plan show "$cid" > "$RES/plan-ha-cutover.json" 2>/dev/null
    else
      say "no move entered paused within 120 s"
    fi
  fi
  stop_writer "$W"
fi

# ---- summary ----------------------------------------------------------------------
{
echo "==================== HA benchmark (issue 18) ===================="
echo "failover, leader SIGKILL -> a coordinator answers status as the leader (ms; ETCD_LEASE_TTL $ETCD_LEASE_TTL, target < 2 x it):"
echo "  each:     $(paste -sd' ' "$RES/failover-answer.ms")"
echo "  answer:   $(stats "$RES/failover-answer.ms")"
echo "  won:      $(stats "$RES/failover-won.ms")   (new leader's 'etcd leadership won' log line)"
echo "  serving:  $(stats "$RES/failover-listening.ms")   (new leader's 'miroir-coordinator listening on' log line)"
echo "  workers:  $(stats "$RES/failover-workers.ms")   (both workers' 'registered with coordinator')"
echo "  kills that could not be measured: $fail_kills"
echo "writer during the failovers ($RATE/s target, $(( (writes_end_ms - writes_start_ms) / 1000 )) s of writes after the load):"
jq_ '"  acknowledged %s, unknown outcome (failed) %s, degraded %s, writes/s %.0f, p50/p99/max batch ms %.1f/%.1f/%.0f, checked %s, lost %s, resurrected %s, mismatched %s, wrong_owner %s" % (j["acknowledged_writes"], j["unknown_outcome"], j["degraded_acks"], j["writes_per_s"], j["batch_latency_p50_ms"], j["batch_latency_p99_ms"], j["longest_write_stall_ms"], j["checked"], j.get("lost"), j.get("resurrected"), j.get("mismatched"), j.get("wrong_owner"))' < "$RES/ha-writer.json" 2>/dev/null || echo "  no writer report"
echo "SQLite fleet load (same writer, same rate):"
jq_ '"  acknowledged %s, unknown %s, writes/s %.0f" % (j["acknowledged_writes"], j["unknown_outcome"], j["writes_per_s"])' < "$RES/sqlite-load.json" 2>/dev/null || echo "  no report"
echo "commit latency (ms per miroir-ctl call, $COMMITS each, errors $commit_errors; net = mutation - read of the same iteration):"
for b in ha sqlite; do
  echo "  $b mutation: $(stats "$RES/commit-$b.mut.ms")"
  echo "  $b read:     $(stats "$RES/commit-$b.read.ms")"
  echo "  $b net:      $(stats "$RES/commit-$b.net.ms")"
done
awk -v hm="$(field "$RES/commit-ha.mut.ms" mean)" -v sm="$(field "$RES/commit-sqlite.mut.ms" mean)" \
    -v hn="$(field "$RES/commit-ha.net.ms" mean)" -v sn="$(field "$RES/commit-sqlite.net.ms" mean)" \
    -v hp="$(field "$RES/commit-ha.net.ms" p50)" -v sp="$(field "$RES/commit-sqlite.net.ms" p50)" 'BEGIN {
  printf "  raw mean: etcd %.1f ms, SQLite %.1f ms, etcd/SQLite %.2f\n", hm, sm, hm/sm
  printf "  net mean: etcd %.1f ms, SQLite %.1f ms, etcd/SQLite %.2f\n", hn, sn, (sn > 0 ? hn/sn : 0)
  printf "  net p50:  etcd %.1f ms, SQLite %.1f ms, etcd/SQLite %.2f\n", hp, sp, (sp > 0 ? hp/sp : 0) }'
if [ -s "$RES/rpc.txt" ]; then
  echo "commit latency over one gRPC channel (ms per call, no ctl process; $RPC_COMMITS each):"
  for b in ha sqlite; do
    echo "  $b SetAlias/RemoveAlias: $(stats "$RES/rpc-$b.mut.ms")"
    echo "  $b ListIndexes:          $(stats "$RES/rpc-$b.read.ms")"
    echo "  $b net (same call pair): $(stats "$RES/rpc-$b.net.ms")"
  done
  awk -v hm="$(field "$RES/rpc-ha.mut.ms" mean)" -v sm="$(field "$RES/rpc-sqlite.mut.ms" mean)" \
      -v hp="$(field "$RES/rpc-ha.mut.ms" p50)" -v sp="$(field "$RES/rpc-sqlite.mut.ms" p50)" 'BEGIN {
    printf "  commit mean: etcd %.2f ms, SQLite %.2f ms, etcd/SQLite %.2f\n", hm, sm, (sm > 0 ? hm/sm : 0)
    printf "  commit p50:  etcd %.2f ms, SQLite %.2f ms, etcd/SQLite %.2f\n", hp, sp, (sp > 0 ? hp/sp : 0) }'
  awk -v hm="$(field "$RES/rpc-ha.net.ms" mean)" -v sm="$(field "$RES/rpc-sqlite.net.ms" mean)" \
      -v hp="$(field "$RES/rpc-ha.net.ms" p50)" -v sp="$(field "$RES/rpc-sqlite.net.ms" p50)" 'BEGIN {
    printf "  net mean:    etcd %.2f ms, SQLite %.2f ms, etcd/SQLite %.2f\n", hm, sm, (sm > 0 ? hm/sm : 0)
    printf "  net p50:     etcd %.2f ms, SQLite %.2f ms, etcd/SQLite %.2f\n", hp, sp, (sp > 0 ? hp/sp : 0) }'
  read -r fc0 fs0 bc0 bs0 p0 < "$RES/etcd-metrics-before.txt"
  read -r fc1 fs1 bc1 bs1 p1 < "$RES/etcd-metrics-after.txt"
  awk -v fc=$((fc1 - fc0)) -v fs="$fs0 $fs1" -v bc=$((bc1 - bc0)) -v bs="$bs0 $bs1" -v p=$((p1 - p0)) 'BEGIN {
  split(fs, f, " "); split(bs, b, " ")
  printf "  etcd during it (3 members): %d proposals committed, %d WAL fsyncs (mean %.2f ms), %d backend commits (mean %.2f ms)\n",
    p, fc, (fc > 0 ? (f[2]-f[1])*1000/fc : 0), bc, (bc > 0 ? (b[2]-b[1])*1000/bc : 0) }'
fi
echo "plans (fleet kind moves documents to_last_cutover_ms to_done_ms wall_ms max_stall_ms p50_stall_ms history_events state):"
sed 's/^/  /' "$RES/plans.txt"
awk '{c[$1" "$2]=$5; d[$1" "$2]=$6} END {
  split("add remove", ks, " ")
  for (i = 1; i <= 2; i++) { k = ks[i]
    if (c["sqlite " k] > 0 && d["sqlite " k] > 0)
      printf "  %s-node etcd/SQLite: to the last cutover %.2f, to done %.2f\n", k, c["ha " k]/c["sqlite " k], d["ha " k]/d["sqlite " k] } }' "$RES/plans.txt"
if [ "$CUTOVER_KILL" = 1 ]; then
  echo "kill while a shard is paused for its cutover:"
  echo "  caught: $(cat "$RES/cutover-caught.txt" 2>/dev/null || echo 'no pause seen')"
  echo "  the killed leader's last move lines:"
  sed 's/^/    /' "$RES/cutover-killed-last.txt" 2>/dev/null
  echo "  failover: $(cat "$RES/cutover-failover.txt" 2>/dev/null)   (killed new answer_ms won_ms listening_ms workers_ms)"
  echo "  new leader on max_write_stall:"
  sed 's/^/    /' "$RES/cutover-stall-lines.txt" 2>/dev/null
  echo "  plan: $(cat "$RES/cutover-plan-state.txt" 2>/dev/null)"
  jq_ '"  writer: acknowledged %s, unknown outcome (failed) %s, writes/s %.0f, max batch %.0f ms, checked %s, lost %s, resurrected %s" % (j["acknowledged_writes"], j["unknown_outcome"], j["writes_per_s"], j["longest_write_stall_ms"], j["checked"], j.get("lost"), j.get("resurrected"))' < "$RES/ha-cutover-writer.json" 2>/dev/null || echo "  no writer report"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw numbers: $RES"
echo "================================================================"
} | tee "$RES/summary.txt"
