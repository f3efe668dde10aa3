#!/usr/bin/env bash
# The main job, end to end on this machine: install the Debian packages, build,
# start a local fleet (coordinator, 2 workers, 4 redis-server nodes in 2 groups),
# initialise the cluster, load documents and keep writing through the public
# API, add a node live (miroir-ctl plan add-node), watch the plan, then print a
# short report — documents, moves, acknowledged writes, lost, resurrected,
# longest write stall — and stop the fleet.
#
# Every step that cannot run says so and the demo continues with what it can
# show; the exit code is 0 only when every step ran and nothing was lost.
#
# Environment: KEYS (2000 documents), RATE (writes/s, 500), SHARDS (16),
# MIROIR_LOCAL_DIR (/tmp/miroir-local), SKIP_SETUP=1, SKIP_BUILD=1, SECURE=1 (the
# whole demo over mTLS with roles: a throw-away CA and tokens made by fleet.sh;
# every secret is then searched for in every log and output, and a hit fails
# the demo), STORE_ACL=0 (store nodes without ACLs; fleet.sh), HA=1 (a 3-member
# etcd cluster and three coordinators, fleet.sh; the demo kills the leading
# coordinator in the middle of the plan while the writes run, measures the
# failover — leader killed until a new leader answers — and the client writes
# that failed, restarts the killed one as a standby and lets the plan finish),
# HA_THROTTLE (documents/s of the plan's backfill with HA=1: 50, so that the
# plan lasts long enough to be interrupted; 0 = unthrottled), HA_KILL_AT (copy:
# the leader is killed while a move backfills and no shard is paused; cutover:
# while a shard is paused for its cutover, to see its held writes fail once
# migration.max_write_stall is spent).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export MIROIR_LOCAL_DIR="${MIROIR_LOCAL_DIR:-/tmp/miroir-local}"
export MIROIR_BIN_DIR="${MIROIR_BIN_DIR:-$REPO/build}"
STATE="$MIROIR_LOCAL_DIR"
FLEET="$REPO/deploy/local/fleet.sh"
CTL="$MIROIR_BIN_DIR/ctl/miroir-ctl"
WRITER="$MIROIR_BIN_DIR/deploy/miroir-demo-writer"
KEYS="${KEYS:-2000}"
RATE="${RATE:-500}"
HA="${HA:-0}"
HA_THROTTLE="${HA_THROTTLE:-50}"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

failed=()
say() { echo "demo: $*"; }
could_not() { say "COULD NOT: $*"; failed+=("$*"); }

# 1. Packages and build.
if [ "${SKIP_SETUP:-0}" != 1 ]; then
  "$REPO/deploy/setup.sh" || could_not "install packages (deploy/setup.sh)"
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building into $MIROIR_BIN_DIR (ninja -j2)"
  if [ ! -f "$MIROIR_BIN_DIR/build.ninja" ]; then
    cmake -S "$REPO" -B "$MIROIR_BIN_DIR" -G Ninja -DMIROIR_BUILD_BENCH=OFF >/dev/null ||
      { could_not "configure the build"; }
  fi
  ninja -C "$MIROIR_BIN_DIR" -j2 miroir-coordinator miroir-worker miroir-ctl miroir-demo-writer ||
    could_not "build every program (see the compiler output above)"
fi

# 2. Fleet.
cleanup() { "$FLEET" stop >/dev/null 2>&1 || true; }
trap cleanup EXIT
if ! "$FLEET" start; then
  could_not "start the fleet (logs in $STATE/logs)"
  say "report: nothing to report; failed steps: ${#failed[@]}"
  exit 1
fi
# Everything the demo prints from here on is kept (the SECURE=1 secret search reads it).
exec > >(tee -a "$STATE/logs/demo.out") 2>&1
COORD="$(cat "$STATE/coordinator.address")"  # HA=1: all three, comma-separated
WORKERS="$(paste -sd, "$STATE/workers")"
# The demo writer's final check reads one coordinator (--coordinator HOST:PORT,
# no list). With HA=1 it is given a loopback forwarder that connects each new
# connection to whichever coordinator leads at that moment (etcd's leader key,
# `fleet.sh leader`): the check runs after the failover, against the new leader.
WRITER_COORD="$COORD"
if [ "$HA" = 1 ]; then
  say "HA=1: coordinators $COORD on etcd $(cat "$STATE/etcd.endpoints"); leader: $("$FLEET" leader)"
  command -v python3 >/dev/null || could_not "forward the writer's check to the leader (python3 is not installed)"
  rm -f "$STATE/leader-forward.port"
  python3 "$REPO/deploy/local/leader_forward.py" "$FLEET" "$STATE/leader-forward.port" \
    >>"$STATE/logs/leader-forward.log" 2>&1 &
  echo $! > "$STATE/pids/leader-forward.pid"  # fleet.sh stop ends it with the fleet
  for _ in $(seq 1 100); do [ -s "$STATE/leader-forward.port" ] && break; sleep 0.1; done
  if [ -s "$STATE/leader-forward.port" ]; then
    WRITER_COORD="127.0.0.1:$(cat "$STATE/leader-forward.port")"
    say "the writer's check reads the leader through $WRITER_COORD"
  else
    could_not "start the forwarder to the leader (see $STATE/logs/leader-forward.log)"
  fi
fi
PKI="$STATE/pki"
ctl_sec=()
if [ "${SECURE:-0}" = 1 ]; then
  ctl_sec=(--tls-ca "$PKI/ca.pem" --tls-cert "$PKI/ops-admin.pem" --tls-key "$PKI/ops-admin.key"
           --token-file "$PKI/ops-admin.token")
  say "SECURE=1: mTLS on every hop, tokens mapped to roles (CA and tokens in $PKI)"
fi
ctl() { "$CTL" --coordinator "$COORD" "${ctl_sec[@]}" "$@"; }

if ! ctl cluster init --file "$STATE/fleet.yaml"; then
  could_not "initialise the cluster (miroir-ctl cluster init)"
fi
for _ in $(seq 1 100); do  # workers register within a lease or two
  ctl --output json status 2>/dev/null | grep -q '"workers"' && break
  sleep 0.1
done
ctl status || could_not "show miroir-ctl status"
if [ "${SECURE:-0}" = 1 ]; then
  # The same call without the operator's certificate and token is refused.
  # (HA=1: asked of the leader itself; the standbys refuse every call anyway.)
  LEADER_ADDR="$COORD"
  if [ "$HA" = 1 ]; then LEADER_ADDR="$("$FLEET" leader | cut -d' ' -f2)"; fi
  if "$CTL" --coordinator "$LEADER_ADDR" status >/dev/null 2>&1; then
    could_not "refuse a call without credentials (status answered in plaintext)"
  else
    say "a call without certificate and token is refused, as it should be"
  fi
  denied=$("$CTL" --coordinator "$LEADER_ADDR" --tls-ca "$PKI/ca.pem" --tls-cert "$PKI/demo-client.pem" \
       --tls-key "$PKI/demo-client.key" --token-file "$PKI/demo-client.token" \
       plans pause-all 2>&1)
  if echo "$denied" | grep -q "may not call"; then
    say "the client application's token may not pause plans: $denied"
  else
    could_not "refuse an admin call from the client application's token ($denied)"
  fi
fi

# 3. Load and keep writing (in the background).
writer_pid=""
if [ -x "$WRITER" ]; then
  say "loading $KEYS documents, then writing at ~$RATE/s through $WORKERS"
  store_auth=()
  if [ -f "$STATE/store.password" ]; then  # fleet.sh STORE_ACL=1 (the default)
    store_auth=(--store-username miroir --store-password-file "$STATE/store.password")
  fi
  if [ "${SECURE:-0}" = 1 ]; then  # the client application: role client on the workers
    store_auth+=(--tls-ca "$PKI/ca.pem" --tls-cert "$PKI/demo-client.pem"
                 --tls-key "$PKI/demo-client.key" --token-file "$PKI/demo-client.token"
                 --coordinator-token-file "$PKI/ops-admin.token")
  fi
  "$WRITER" --coordinator "$WRITER_COORD" --workers "$WORKERS" --keys "$KEYS" --rate "$RATE" \
    --duration 600 --report-json "$STATE/writer-report.json" "${store_auth[@]}" \
    >"$STATE/logs/writer.out" 2>"$STATE/logs/writer.log" &
  writer_pid=$!
  # Wait (bounded) for the load to finish before changing the topology.
  for _ in $(seq 1 600); do
    n=$(grep -o '[0-9]* acknowledged' "$STATE/logs/writer.log" 2>/dev/null | tail -1 | cut -d' ' -f1)
    [ "${n:-0}" -ge "$KEYS" ] && break
    kill -0 "$writer_pid" 2>/dev/null || break
    sleep 0.1
  done
  sleep 2
else
  could_not "run the demo writer ($WRITER is not built)"
fi

# HA=1: kill the leading coordinator in the middle of the plan while the writes
# run; measure until a new leader answers; restart the killed one (it joins as a
# standby). HA_KILL_AT=copy (default): while a move backfills and no shard is
# paused — DESIGN §9a: no client write may fail. HA_KILL_AT=cutover: while a
# shard is paused for its cutover — its held writes wait for the new leader,
# bounded by migration.max_write_stall, and fail past it.
killed=""; new_leader=""; failover_ms=""; kill_states=""; kill_ms=0; restarted=""
HA_KILL_AT="${HA_KILL_AT:-copy}"
move_states() {  # the plan's move states, one line each
  ctl --timeout 2s --output json plan show "$1" 2>/dev/null |
    sed -n 's/.*"moves":\[\(.*\)\],"est_duration_s".*/\1/p' |
    grep -o '"state":"[a-z_]*"' | cut -d'"' -f4
}
count_states() { echo "$1" | grep -cE "^($2)\$"; }
kill_leader_mid_plan() {  # plan id
  local states="" i ready
  for i in $(seq 1 600); do  # 60 s at most
    states=$(move_states "$1")
    ready=0
    if [ "$HA_KILL_AT" = cutover ]; then
      [ "$(count_states "$states" 'paused|final_delta')" -gt 0 ] && ready=1
    elif [ "$(count_states "$states" 'catching_up|paused|final_delta')" -eq 0 ]; then
      # A move backfilling, none catching up (about to pause) nor paused.
      [ "$(count_states "$states" 'copying')" -gt 0 ] && ready=1
    elif [ "$i" -gt 200 ] && [ "$(count_states "$states" 'paused|final_delta')" -eq 0 ]; then
      # The backfills were missed for 20 s: any moment no shard is paused.
      [ "$(count_states "$states" 'prepare|dual_write|copying|catching_up')" -gt 0 ] && ready=1
    fi
    [ "$ready" = 1 ] && break
    if [ -n "$states" ] && [ "$(count_states "$states" 'pending|prepare|dual_write|copying|catching_up|paused|final_delta')" -eq 0 ]; then
      could_not "kill the leader mid-plan ($HA_KILL_AT): every move was past its cutover already ($(echo "$states" | paste -sd' '))"
      return 1
    fi
    sleep 0.1
  done
  if [ "$ready" != 1 ]; then
    could_not "kill the leader mid-plan ($HA_KILL_AT): no such moment within 60 s ($(echo "$states" | paste -sd' '))"
    return 1
  fi
  kill_states=$(echo "$states" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')
  if ! killed=$("$FLEET" kill-leader KILL); then
    could_not "kill the leader (fleet.sh kill-leader)"
    killed=""
    return 1
  fi
  kill_ms=$(now_ms)  # kill-leader returns right after its SIGKILL
  say "killed the leader ${killed% *} (SIGKILL) with the plan's moves at: $kill_states"
  local killed_addr out
  killed_addr=$(echo "$killed" | cut -d' ' -f2)
  for _ in $(seq 1 600); do  # 60 s at most: a new leader answers GetStatus
    if out=$(ctl --timeout 1s --output json status 2>/dev/null); then
      new_leader=$(echo "$out" | grep -o '"leader": *"[^"]*"' | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
      if [ -n "$new_leader" ] && [ "$new_leader" != "$killed_addr" ]; then
        failover_ms=$(( $(now_ms) - kill_ms ))
        break
      fi
    fi
    sleep 0.1
  done
  if [ -z "$failover_ms" ]; then
    could_not "see a new leader answer within 60 s of killing ${killed% *}"
    return 1
  fi
  say "new leader $("$FLEET" leader | cut -d' ' -f1,2) answering ${failover_ms} ms after the kill"
  local n
  n=$(echo "$killed" | cut -d' ' -f1 | tr -dc 0-9)
  if "$FLEET" restart-coordinator "$n"; then
    restarted="coordinator$n"
  else
    could_not "restart coordinator$n after the failover"
  fi
}

# 4. Add a node live and watch the plan.
plan_id=""
plan_done_ms=0
if addr=$("$FLEET" add-node r4); then
  say "new node r4 at $addr; planning add-node"
  throttle=()
  if [ "$HA" = 1 ] && [ "$HA_THROTTLE" != 0 ]; then
    throttle=(--throttle "$HA_THROTTLE")
    say "HA=1: the backfill throttled to $HA_THROTTLE documents/s so the leader can be killed mid-plan"
  fi
  out=$(ctl --output json plan add-node --id r4 --group g0 --address "$addr" ${throttle[@]+"${throttle[@]}"} 2>&1)
  rc=$?
  echo "$out"
  if [ $rc -eq 0 ]; then
    plan_id=$(echo "$out" | grep -o '"id": *[0-9]*' | head -1 | grep -o '[0-9]*$')
    if [ "$HA" = 1 ]; then
      kill_leader_mid_plan "$plan_id"
      # The watch goes through the list: it finds the new leader.
      watched=1
      for _ in 1 2 3; do  # a watch cut by a leader change is started again
        if ctl plan watch "$plan_id"; then watched=0; break; fi
        sleep 1
      done
      [ "$watched" = 0 ] || could_not "finish plan $plan_id (plan watch exited non-zero)"
    else
      ctl plan watch "$plan_id" || could_not "finish plan $plan_id (plan watch exited non-zero)"
    fi
    plan_done_ms=$(now_ms)
  else
    could_not "create the add-node plan"
  fi
else
  could_not "start redis node r4"
fi

# 5. Stop writing; the writer waits for recovery passes and checks the nodes.
writer_rc=1
if [ -n "$writer_pid" ]; then
  sleep 2
  kill -TERM "$writer_pid" 2>/dev/null
  wait "$writer_pid"
  writer_rc=$?
fi
moves=0; stall_ms=0
if [ -n "$plan_id" ]; then
  pj=$(ctl --output json plan show "$plan_id" 2>/dev/null)
  moves=$(echo "$pj" | grep -o '"shard":' | wc -l)
  stall_ms=$(echo "$pj" | grep -o '"stall_ms": *[0-9]*' | grep -o '[0-9]*$' | sort -n | tail -1)
fi
ctl verify --index products --wait || could_not "verify every shard's owners agree (miroir-ctl verify)"

field() { grep -o "\"$1\": *[0-9.a-z]*" "$STATE/writer-report.json" 2>/dev/null | head -1 |
          sed 's/.*: *//'; }
echo
echo "==================== miroir demo report ===================="
if [ -f "$STATE/writer-report.json" ]; then
  printf '%-34s %s\n' "documents (live at the end)" "$(field documents)"
  printf '%-34s %s\n' "moves (shard replicas)" "$moves"
  printf '%-34s %s\n' "acknowledged writes" "$(field acknowledged_writes)"
  printf '%-34s %s\n' "lost" "$(field lost)"
  printf '%-34s %s\n' "resurrected" "$(field resurrected)"
  printf '%-34s %s\n' "wrong-owner shards/keys" "$(field wrong_owner)"
  printf '%-34s %s ms\n' "longest write stall (client)" "$(field longest_write_stall_ms)"
  printf '%-34s %s ms\n' "longest cutover stall (E2->E3)" "${stall_ms:-0}"
  [ "$(field checked)" = "true" ] || could_not "check the nodes: $(grep check_error "$STATE/writer-report.json")"
  if [ "$HA" = 1 ]; then
    printf '%-34s %s\n' "leader killed (SIGKILL, mid-plan)" "${killed:-none} (moves: ${kill_states:-?})"
    printf '%-34s %s\n' "new leader" "${new_leader:-none}"
    printf '%-34s %s ms\n' "failover (kill -> leader answers)" "${failover_ms:-?}"
    if [ "$kill_ms" -gt 0 ] && [ "$plan_done_ms" -gt 0 ]; then
      printf '%-34s %s ms\n' "plan done after the kill" "$((plan_done_ms - kill_ms))"
    fi
    printf '%-34s %s\n' "killed coordinator restarted" "${restarted:-no}"
    # The writer counts every write that did not succeed as an unknown outcome
    # (its key retired); it keeps no timestamps of them, so this is the whole
    # run's count — the failover's is at most this.
    printf '%-34s %s\n' "client writes failed (whole run)" "$(field unknown_outcome)"
    printf '%-34s %s\n' "degraded acks (whole run)" "$(field degraded_acks)"
    if [ "$HA_KILL_AT" = cutover ]; then
      echo "  (HA_KILL_AT=cutover: writes held on the paused shard fail once max_write_stall is spent)"
    elif [ "$(field unknown_outcome)" != 0 ]; then
      could_not "keep every client write through the failover ($(field unknown_outcome) failed; $STATE/logs/writer.log)"
    fi
  fi
else
  echo "no writer report"
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "steps that could not run:"
  for f in "${failed[@]}"; do echo "  - $f"; done
fi
# SECURE=1: no secret in the open (DESIGN §13). Every token and the store
# password are searched for in every log and every output the demo kept.
if [ "${SECURE:-0}" = 1 ]; then
  leaks=0
  for secret_file in "$PKI/ops-admin.token" "$PKI/demo-client.token" "$STATE/store.password"; do
    [ -f "$secret_file" ] || continue
    secret="$(tr -d '\n' < "$secret_file")"
    if grep -rlF -- "$secret" "$STATE/logs" "$STATE"/*.yaml "$STATE/writer-report.json" 2>/dev/null; then
      leaks=$((leaks + 1))
    fi
  done
  printf '%-34s %s\n' "secrets found in logs/outputs" "$leaks"
  [ "$leaks" -eq 0 ] || could_not "keep every secret out of the logs ($leaks found)"
fi
echo "logs: $STATE/logs"
echo "============================================================"
[ ${#failed[@]} -eq 0 ] && [ "$writer_rc" -eq 0 ]
