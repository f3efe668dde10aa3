#!/usr/bin/env bash
# A local miroir fleet on loopback: 4 redis-server store nodes in 2 groups
# (g0: r0 r1, g1: r2 r3), one miroir-coordinator and 2 miroir-workers, all with
# OS-chosen or free ports, pids and logs kept in a state directory.
#
#   fleet.sh start            start everything, write fleet.yaml (does not init)
#   fleet.sh init             miroir-ctl cluster init --file STATE/fleet.yaml
#   fleet.sh add-node ID      start one more redis-server; prints its HOST:PORT
#   fleet.sh status           which processes run, then miroir-ctl status
#   fleet.sh stop             stop every process this script started
#   fleet.sh env              print MIROIR_COORDINATOR=... and WORKERS=...
#
# Environment: MIROIR_LOCAL_DIR (default /tmp/miroir-local), MIROIR_BIN_DIR
# (default <repo>/build), SHARDS (16), RF (1), LEASE_TTL (2s), RETAIN (5s),
# STORE_ACL (1: every redis-server runs with the `default` user off and an ACL
# user `miroir` whose random password is in STATE/store.password; the workers
# log in with store.username/store.password_file — DESIGN §13. 0: no ACL),
# SECURE (1: a throw-away CA and certificates made with openssl in STATE/pki,
# mTLS on every hop and bearer tokens mapped to roles — the coordinator admits
# the workers by certificate subject and the operator by token; `fleet.sh env`
# prints the MIROIR_TLS_* / MIROIR_TOKEN_FILE the CLI needs. 0: plaintext).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${MIROIR_LOCAL_DIR:-/tmp/miroir-local}"
BIN="${MIROIR_BIN_DIR:-$REPO/build}"
COORD_BIN="$BIN/coordinator/miroir-coordinator"
WORKER_BIN="$BIN/worker/miroir-worker"
CTL_BIN="$BIN/ctl/miroir-ctl"
SHARDS="${SHARDS:-16}"
RF="${RF:-1}"
LEASE_TTL="${LEASE_TTL:-2s}"
RETAIN="${RETAIN:-5s}"
STORE_ACL="${STORE_ACL:-1}"
SECURE="${SECURE:-0}"
PKI="$STATE/pki"

log() { echo "fleet: $*" >&2; }
die() { echo "fleet: error: $*" >&2; exit 1; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { cat "$STATE/pids/$1.pid" 2>/dev/null || true; }

# A port nothing listens on (best effort; redis-server is retried on a clash).
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( (RANDOM << 1 | RANDOM & 1) % 30000 + 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

wait_port_file() {  # file pid name
  for _ in $(seq 1 300); do
    if [ -s "$1" ]; then cat "$1"; return 0; fi
    pid_alive "$2" || die "$3 exited; see $STATE/logs/$3.log"
    sleep 0.1
  done
  die "$3 wrote no port file; see $STATE/logs/$3.log"
}

# The store credentials (STORE_ACL=1): a random password in STATE/store.password
# (0600) and the ACL file the nodes load, which holds only its SHA-256.
make_store_acl() {
  [ "$STORE_ACL" = 1 ] || return 0
  (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$STATE/store.password")
  local hash
  hash=$(tr -d '\n' < "$STATE/store.password" | sha256sum | cut -d' ' -f1)
  (umask 077; printf 'user default off\nuser miroir on #%s ~* &* +@all\n' "$hash" > "$STATE/users.acl")
}

# SECURE=1: a CA, one certificate for the servers (coordinator and workers, the
# workers also present it to the coordinator), one per client, and tokens.
make_pki() {
  [ "$SECURE" = 1 ] || return 0
  command -v openssl >/dev/null || die "openssl is not installed (deploy/setup.sh)"
  mkdir -p "$PKI"
  (
    umask 077
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=miroir-demo-ca" \
      -keyout ca.key -out ca.pem 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > ext
    for n in miroir-node ops-admin demo-client; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout "$n.key" -out "$n.csr" 2>/dev/null
      openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext -out "$n.pem" 2>/dev/null
    done
    for n in ops-admin demo-client; do
      head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$n.token"
    done
    sha() { tr -d '\n' < "$1" | sha256sum | cut -d' ' -f1; }
    # The coordinator: the operator (admin, by token), the demo's client
    # application (client: it may call no Coordinator method) and the workers (by
    # certificate subject).
    printf 'tokens:\n  - {name: ops-admin, sha256: %s, role: admin}\n  - {name: demo-client, sha256: %s, role: client}\nsubjects:\n  - {subject: "CN=miroir-node", role: worker}\n' \
      "$(sha ops-admin.token)" "$(sha demo-client.token)" > coordinator-tokens.yaml
    # The workers: the demo's client application (role client).
    printf 'tokens:\n  - {name: demo-client, sha256: %s, role: client}\n' \
      "$(sha demo-client.token)" > worker-tokens.yaml
  ) || die "could not make the throw-away CA in $PKI"
}

# Server flags of the coordinator (`coordinator`) or a worker (`worker`).
server_security() {
  [ "$SECURE" = 1 ] || return 0
  echo --tls-cert "$PKI/miroir-node.pem" --tls-key "$PKI/miroir-node.key" --tls-ca "$PKI/ca.pem" \
    --tokens-file "$PKI/$1-tokens.yaml"
}

# miroir-ctl's flags: the operator's certificate and admin token.
ctl_security() {
  [ "$SECURE" = 1 ] || return 0
  echo --tls-ca "$PKI/ca.pem" --tls-cert "$PKI/ops-admin.pem" --tls-key "$PKI/ops-admin.key" \
    --token-file "$PKI/ops-admin.token"
}

node_ping() {  # port
  if [ "$STORE_ACL" = 1 ]; then
    REDISCLI_AUTH="$(cat "$STATE/store.password")" redis-cli --user miroir -p "$1" ping 2>/dev/null
  else
    redis-cli -p "$1" ping 2>/dev/null
  fi
}

start_redis() {  # id
  local id="$1" port pid
  local acl=()
  [ "$STORE_ACL" = 1 ] && acl=(--aclfile "$STATE/users.acl")
  mkdir -p "$STATE/nodes/$id"
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    setsid redis-server --port "$port" --bind 127.0.0.1 --dir "$STATE/nodes/$id" \
      --appendonly yes --appendfsync always --maxmemory-policy noeviction --save "" \
      --daemonize no --protected-mode no --logfile "" "${acl[@]}" \
      >>"$STATE/logs/$id.log" 2>&1 < /dev/null &
    pid=$!
    for _ in $(seq 1 100); do
      if node_ping "$port" | grep -q PONG; then
        echo "$pid" > "$STATE/pids/$id.pid"
        echo "127.0.0.1:$port" > "$STATE/nodes/$id/address"
        echo "127.0.0.1:$port"
        return 0
      fi
      pid_alive "$pid" || break
      sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  die "redis-server $id did not start; see $STATE/logs/$id.log"
}

write_configs() {
  cat > "$STATE/coordinator.yaml" <<YAML
worker_lease_ttl: $LEASE_TTL
migration:
  drain_timeout: 20ms
  max_write_stall: 2s
  catch_up_threshold: 200
  catch_up_max: 5m
  retain_moved_shard: $RETAIN
anti_entropy:
  enabled: true
YAML
  {
    echo "groups:"
    echo "  - id: g0"
    echo "    nodes:"
    echo "      - {id: r0, address: \"$(cat "$STATE/nodes/r0/address")\", store: redis}"
    echo "      - {id: r1, address: \"$(cat "$STATE/nodes/r1/address")\", store: redis}"
    echo "  - id: g1"
    echo "    nodes:"
    echo "      - {id: r2, address: \"$(cat "$STATE/nodes/r2/address")\", store: redis}"
    echo "      - {id: r3, address: \"$(cat "$STATE/nodes/r3/address")\", store: redis}"
    echo "indexes:"
    echo "  - {name: products, shards: $SHARDS, rf: $RF}"
  } > "$STATE/fleet.yaml"
  if [ "$STORE_ACL" = 1 ]; then
    printf 'store:\n  username: miroir\n  password_file: %s\n' "$STATE/store.password" \
      > "$STATE/worker.yaml"
  else
    : > "$STATE/worker.yaml"
  fi
}

cmd_start() {
  for b in "$COORD_BIN" "$WORKER_BIN" "$CTL_BIN"; do
    [ -x "$b" ] || die "$b is not built (ninja -C $BIN miroir-coordinator miroir-worker miroir-ctl)"
  done
  command -v redis-server >/dev/null || die "redis-server is not installed (deploy/setup.sh)"
  if pid_alive "$(pid_of coordinator)"; then die "a fleet already runs in $STATE (fleet.sh stop)"; fi
  rm -rf "$STATE"
  mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/nodes" "$STATE/coordinator-data"
  make_store_acl
  make_pki
  for id in r0 r1 r2 r3; do log "redis $id at $(start_redis "$id")"; done
  write_configs

  setsid "$COORD_BIN" --listen 127.0.0.1:0 --port-file "$STATE/coordinator.port" \
    --data-dir "$STATE/coordinator-data" --config "$STATE/coordinator.yaml" \
    $(server_security coordinator) \
    >>"$STATE/logs/coordinator.log" 2>&1 < /dev/null &
  echo $! > "$STATE/pids/coordinator.pid"
  local cport
  cport=$(wait_port_file "$STATE/coordinator.port" "$(pid_of coordinator)" coordinator)
  echo "127.0.0.1:$cport" > "$STATE/coordinator.address"
  log "coordinator at 127.0.0.1:$cport"

  : > "$STATE/workers"
  for w in 0 1; do
    setsid "$WORKER_BIN" --listen 127.0.0.1:0 --port-file "$STATE/worker$w.port" \
      --coordinator "127.0.0.1:$cport" --config "$STATE/worker.yaml" $(server_security worker) \
      >>"$STATE/logs/worker$w.log" 2>&1 < /dev/null &
    echo $! > "$STATE/pids/worker$w.pid"
    local wport
    wport=$(wait_port_file "$STATE/worker$w.port" "$(pid_of worker$w)" "worker$w")
    echo "127.0.0.1:$wport" >> "$STATE/workers"
    log "worker$w at 127.0.0.1:$wport"
  done
  log "started; state in $STATE (fleet.sh init next)"
}

cmd_init() {
  # shellcheck disable=SC2046
  "$CTL_BIN" --coordinator "$(cat "$STATE/coordinator.address")" $(ctl_security) \
    cluster init --file "$STATE/fleet.yaml"
}

cmd_add_node() {
  local id="${1:-}"
  [ -n "$id" ] || die "usage: fleet.sh add-node ID"
  [ -d "$STATE/pids" ] || die "no fleet in $STATE"
  if pid_alive "$(pid_of "$id")"; then cat "$STATE/nodes/$id/address"; return 0; fi
  start_redis "$id"
}

cmd_status() {
  [ -d "$STATE/pids" ] || { echo "no fleet in $STATE"; return 1; }
  local f name pid
  for f in "$STATE"/pids/*.pid; do
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    if pid_alive "$pid"; then state=running; else state=stopped; fi
    printf '%-12s pid %-8s %s\n' "$name" "$pid" "$state"
  done
  if pid_alive "$(pid_of coordinator)"; then
    "$CTL_BIN" --coordinator "$(cat "$STATE/coordinator.address")" $(ctl_security) status || true
  fi
}

cmd_stop() {
  [ -d "$STATE/pids" ] || { log "no fleet in $STATE"; return 0; }
  local f pid
  # Workers first, then the coordinator, then the nodes; only pids we recorded.
  for f in "$STATE"/pids/worker*.pid "$STATE"/pids/coordinator.pid "$STATE"/pids/r*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 50); do
    local any=0
    for f in "$STATE"/pids/*.pid; do pid_alive "$(cat "$f")" && any=1; done
    [ "$any" = 0 ] && break
    sleep 0.1
  done
  for f in "$STATE"/pids/*.pid; do
    pid=$(cat "$f")
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  done
  log "stopped (logs kept in $STATE/logs)"
}

cmd_env() {
  echo "MIROIR_COORDINATOR=$(cat "$STATE/coordinator.address")"
  echo "WORKERS=$(paste -sd, "$STATE/workers")"
  if [ -f "$PKI/ca.pem" ]; then
    echo "MIROIR_TLS_CA=$PKI/ca.pem"
    echo "MIROIR_TLS_CERT=$PKI/ops-admin.pem"
    echo "MIROIR_TLS_KEY=$PKI/ops-admin.key"
    echo "MIROIR_TOKEN_FILE=$PKI/ops-admin.token"
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  init) cmd_init ;;
  add-node) shift; cmd_add_node "$@" ;;
  status) cmd_status ;;
  stop) cmd_stop ;;
  env) cmd_env ;;
  *) echo "usage: fleet.sh start|init|add-node ID|status|stop|env" >&2; exit 2 ;;
esac
