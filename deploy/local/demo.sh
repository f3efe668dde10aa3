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
# the demo), STORE_ACL=0 (store nodes without ACLs; fleet.sh).
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
COORD="$(cat "$STATE/coordinator.address")"
WORKERS="$(paste -sd, "$STATE/workers")"
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
  if "$CTL" --coordinator "$COORD" status >/dev/null 2>&1; then
    could_not "refuse a call without credentials (status answered in plaintext)"
  else
    say "a call without certificate and token is refused, as it should be"
  fi
  denied=$("$CTL" --coordinator "$COORD" --tls-ca "$PKI/ca.pem" --tls-cert "$PKI/demo-client.pem" \
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
  "$WRITER" --coordinator "$COORD" --workers "$WORKERS" --keys "$KEYS" --rate "$RATE" \
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

# 4. Add a node live and watch the plan.
plan_id=""
if addr=$("$FLEET" add-node r4); then
  say "new node r4 at $addr; planning add-node"
  out=$(ctl --output json plan add-node --id r4 --group g0 --address "$addr" 2>&1)
  rc=$?
  echo "$out"
  if [ $rc -eq 0 ]; then
    plan_id=$(echo "$out" | grep -o '"id": *[0-9]*' | head -1 | grep -o '[0-9]*$')
    ctl plan watch "$plan_id" || could_not "finish plan $plan_id (plan watch exited non-zero)"
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
