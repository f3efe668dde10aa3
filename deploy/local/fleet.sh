#!/usr/bin/env bash
# A local miroir fleet on loopback: 4 redis-server store nodes in 2 groups
# (g0: r0 r1, g1: r2 r3), one miroir-coordinator and 2 miroir-workers, all with
# OS-chosen or free ports, pids and logs kept in a state directory. With HA=1:
# a 3-member etcd cluster and three coordinators on it instead of one (one
# leads, two stand by; docs/ha.md), the workers and the CLI given all three.
#
#   fleet.sh start            start everything, write fleet.yaml (does not init)
#   fleet.sh init             miroir-ctl cluster init --file STATE/fleet.yaml
#   fleet.sh add-node ID      start one more redis-server; prints its HOST:PORT
#   fleet.sh status           which processes run, then miroir-ctl status
#                             (HA: the etcd members and the leader first)
#   fleet.sh stop             stop every process this script started
#   fleet.sh env              print MIROIR_COORDINATOR=... and WORKERS=...
# HA=1 fleets only (the mode is read from the state directory):
#   fleet.sh leader           print the leader: NAME HOST:PORT PID (etcd key PREFIX/leader)
#   fleet.sh kill-leader [SIG]    send SIG (KILL) to the leading coordinator;
#                             prints NAME HOST:PORT PID of the one it signalled
#   fleet.sh stop-coordinator N   SIGTERM coordinator N (0-2): a leader resigns at once
#   fleet.sh restart-coordinator N  start coordinator N again on its own port
#                             (it joins as a standby when another leads)
#   fleet.sh stop-etcd N      SIGTERM etcd member eN (two stopped: no quorum)
#   fleet.sh restart-etcd N   start etcd member eN again on its data dir and ports
#
# Environment: MIROIR_LOCAL_DIR (default /tmp/miroir-local), MIROIR_BIN_DIR
# (default <repo>/build), SHARDS (16), RF (1), LEASE_TTL (2s; 8s with HA=1),
# RETAIN (5s),
# STORE_ACL (1: every redis-server runs with the `default` user off and an ACL
# user `miroir` whose random password is in STATE/store.password; the workers
# log in with store.username/store.password_file — DESIGN §13. 0: no ACL),
# SECURE (1: a throw-away CA and certificates made with openssl in STATE/pki,
# mTLS on every hop and bearer tokens mapped to roles — the coordinator admits
# the workers by certificate subject and the operator by token; `fleet.sh env`
# prints the MIROIR_TLS_* / MIROIR_TOKEN_FILE the CLI needs. 0: plaintext),
# HA (1: etcd + three coordinators, see above; 0: one coordinator on SQLite),
# ETCD_LEASE_TTL (2s: state.etcd.lease_ttl; 2 x it + LEASE_TTL/3 must be
# shorter than LEASE_TTL), ETCD_PREFIX (/miroir).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${MIROIR_LOCAL_DIR:-/tmp/miroir-local}"
BIN="${MIROIR_BIN_DIR:-$REPO/build}"
COORD_BIN="$BIN/coordinator/miroir-coordinator"
WORKER_BIN="$BIN/worker/miroir-worker"
CTL_BIN="$BIN/ctl/miroir-ctl"
SHARDS="${SHARDS:-16}"
RF="${RF:-1}"
HA="${HA:-0}"
if [ "$HA" = 1 ]; then LEASE_TTL="${LEASE_TTL:-8s}"; else LEASE_TTL="${LEASE_TTL:-2s}"; fi
ETCD_LEASE_TTL="${ETCD_LEASE_TTL:-2s}"
ETCD_PREFIX="${ETCD_PREFIX:-/miroir}"
RETAIN="${RETAIN:-5s}"
STORE_ACL="${STORE_ACL:-1}"
SECURE="${SECURE:-0}"
PKI="$STATE/pki"

log() { echo "fleet: $*" >&2; }
die() { echo "fleet: error: $*" >&2; exit 1; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# A recorded pid is still ours while its command line names the state directory
# or it runs in it (redis-server rewrites its command line but runs in its
# --dir): stop and status never signal or count a pid the system has given to
# another process since.
pid_ours() {
  pid_alive "${1:-}" || return 1
  case "$(readlink "/proc/$1/cwd" 2>/dev/null)" in "$STATE"/*) return 0 ;; esac
  tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$STATE"
}
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

# A free port below the kernel's ephemeral range (HA=1: the etcd members and
# the coordinators, which are restarted on the same port; a port in the range
# may meanwhile be the source port of some outgoing connection and refuse the
# bind).
free_port_low() {
  local lo=20000 hi p
  hi=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$hi" -gt $((lo + 1000)) ] || hi=$((lo + 10000))
  for _ in $(seq 1 100); do
    p=$(( (RANDOM << 1 | RANDOM & 1) % (hi - lo) + lo ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free port found below $hi"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

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

# --- HA=1: a 3-member etcd cluster and three coordinators (docs/ha.md) -------

is_ha() { [ -f "$STATE/etcd.endpoints" ]; }

etcdctl_() {  # etcdctl against every member of this fleet's etcd
  ETCDCTL_API=3 etcdctl --endpoints "$(cat "$STATE/etcd.endpoints")" \
    --dial-timeout 2s --command-timeout 3s "$@"
}

# Three etcd members on loopback (peer and client URL on 127.0.0.1, ports
# free), data under STATE/etcd; retried with other ports when a member does not
# come up (a port taken between the check and the bind).
# Member I (0-2) of the fleet's etcd, from what start_etcd recorded in
# STATE/etcd: its data dir eI, its client and peer ports (eI.ports), the
# cluster (cluster) and its token (token). Used again by restart-etcd: on a
# data dir that exists, --initial-cluster* are ignored and the member rejoins.
start_etcd_member() {  # i
  local i="$1" client peer
  read -r client peer < "$STATE/etcd/e$i.ports"
  mkdir -p "$STATE/etcd/e$i"
  setsid etcd --name "e$i" --data-dir "$STATE/etcd/e$i" \
    --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$(cat "$STATE/etcd/cluster")" --initial-cluster-state new \
    --initial-cluster-token "$(cat "$STATE/etcd/token")" --logger zap --log-outputs stderr \
    >>"$STATE/logs/etcd$i.log" 2>&1 < /dev/null &
  echo $! > "$STATE/pids/etcd$i.pid"
}

# Three etcd members on loopback (peer and client URL on 127.0.0.1, ports
# free), data under STATE/etcd; retried with other ports when a member does not
# come up (a port taken between the check and the bind).
start_etcd() {
  command -v etcd >/dev/null || die "etcd is not installed (deploy/setup.sh: etcd-server)"
  command -v etcdctl >/dev/null || die "etcdctl is not installed (deploy/setup.sh: etcd-client)"
  local attempt i p ports endpoints healthy
  for attempt in 1 2 3; do
    ports=()
    while [ ${#ports[@]} -lt 6 ]; do
      p=$(free_port_low)
      case " ${ports[*]} " in *" $p "*) continue ;; esac
      ports+=("$p")
    done
    # ports[i]: client URL of member i; ports[i+3]: its peer URL.
    rm -rf "$STATE/etcd"
    mkdir -p "$STATE/etcd"
    for i in 0 1 2; do echo "${ports[$i]} ${ports[$((i + 3))]}" > "$STATE/etcd/e$i.ports"; done
    echo "e0=http://127.0.0.1:${ports[3]},e1=http://127.0.0.1:${ports[4]},e2=http://127.0.0.1:${ports[5]}" \
      > "$STATE/etcd/cluster"
    echo "miroir-local-$$-$RANDOM" > "$STATE/etcd/token"
    endpoints="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
    for i in 0 1 2; do start_etcd_member "$i"; done
    echo "$endpoints" > "$STATE/etcd.endpoints"
    healthy=0
    local deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
      if etcdctl_ endpoint health >/dev/null 2>&1; then healthy=1; break; fi
      for i in 0 1 2; do pid_alive "$(pid_of "etcd$i")" || break 2; done
      sleep 0.5
    done
    if [ "$healthy" = 1 ]; then
      log "etcd e0 e1 e2 at $endpoints (peers $(cat "$STATE/etcd/cluster"))"
      return 0
    fi
    log "etcd did not come up (attempt $attempt); see $STATE/logs/etcd*.log"
    for i in 0 1 2; do
      if pid_alive "$(pid_of "etcd$i")"; then kill -KILL "$(pid_of "etcd$i")" 2>/dev/null || true; fi
      rm -f "$STATE/pids/etcd$i.pid"
    done
    rm -f "$STATE/etcd.endpoints"
    sleep 0.5
  done
  die "the etcd cluster did not start; see $STATE/logs/etcd*.log"
}

# Coordinator N (0-2) of an HA fleet; on its recorded port when it has one
# (a restart keeps the address the workers and the CLI were given).
start_coordinator() {  # n
  local n="$1" listen port attempt
  mkdir -p "$STATE/coordinator-data$n"
  for attempt in 1 2 3 4 5; do
    if [ -f "$STATE/coordinator$n.address" ]; then
      listen="$(cat "$STATE/coordinator$n.address")"
    else
      listen="127.0.0.1:$(free_port_low)"
    fi
    rm -f "$STATE/coordinator$n.port"
    # shellcheck disable=SC2046
    setsid "$COORD_BIN" --listen "$listen" --port-file "$STATE/coordinator$n.port" \
      --data-dir "$STATE/coordinator-data$n" --config "$STATE/coordinator.yaml" \
      $(server_security coordinator) \
      >>"$STATE/logs/coordinator$n.log" 2>&1 < /dev/null &
    echo $! > "$STATE/pids/coordinator$n.pid"
    for _ in $(seq 1 300); do
      [ -s "$STATE/coordinator$n.port" ] && break
      pid_alive "$(pid_of "coordinator$n")" || break
      sleep 0.1
    done
    if [ -s "$STATE/coordinator$n.port" ]; then
      port=$(cat "$STATE/coordinator$n.port")
      echo "127.0.0.1:$port" > "$STATE/coordinator$n.address"
      return 0
    fi
    # A first start whose port was taken meanwhile tries another; a restart
    # must keep its address (the workers and the CLI were given it).
    [ -f "$STATE/coordinator$n.address" ] && break
    if pid_alive "$(pid_of "coordinator$n")"; then kill -KILL "$(pid_of "coordinator$n")" 2>/dev/null || true; fi
  done
  die "coordinator$n did not start on $listen; see $STATE/logs/coordinator$n.log"
}

# The leader's HOST:PORT from etcd (PREFIX/leader, coordinator/etcd_layout.h);
# empty when no leader key exists (none elected yet, or its lease expired).
leader_address() {
  etcdctl_ get --print-value-only "$(cat "$STATE/etcd.prefix")/leader" 2>/dev/null | head -1
}

# NAME HOST:PORT PID of the leader; exit 1 when there is none.
leader_line() {
  local addr n
  addr=$(leader_address)
  [ -n "$addr" ] || return 1
  for n in 0 1 2; do
    if [ "$(cat "$STATE/coordinator$n.address" 2>/dev/null)" = "$addr" ]; then
      echo "coordinator$n $addr $(pid_of "coordinator$n")"
      return 0
    fi
  done
  echo "unknown $addr -"
}

need_ha() {
  [ -d "$STATE/pids" ] || die "no fleet in $STATE"
  is_ha || die "the fleet in $STATE is not an HA fleet (HA=1 fleet.sh start)"
}

coordinator_n() {  # validates N (a coordinator's or an etcd member's)
  case "${1:-}" in 0|1|2) ;; *) die "usage: fleet.sh $2 N (N: 0, 1 or 2)" ;; esac
}

cmd_leader() {
  need_ha
  leader_line || { echo "no leader (no key $(cat "$STATE/etcd.prefix")/leader in etcd)" >&2; return 1; }
}

cmd_kill_leader() {
  need_ha
  local sig="${1:-KILL}" line name addr pid
  line=$(leader_line) || die "no leader to kill (no key $(cat "$STATE/etcd.prefix")/leader)"
  read -r name addr pid <<<"$line"
  [ "$name" != unknown ] || die "the leader $addr is not one of this fleet's coordinators"
  pid_ours "$pid" || die "$name ($addr) leads in etcd but its pid $pid is gone (its lease has not expired yet)"
  kill -"$sig" "$pid"
  log "sent SIG$sig to the leader $name at $addr (pid $pid)"
  echo "$name $addr $pid"
}

cmd_stop_coordinator() {
  need_ha
  coordinator_n "${1:-}" stop-coordinator
  local pid
  pid=$(pid_of "coordinator$1")
  pid_ours "$pid" || { log "coordinator$1 does not run"; return 0; }
  kill -TERM "$pid"
  for _ in $(seq 1 50); do pid_ours "$pid" || break; sleep 0.1; done
  if pid_ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  log "coordinator$1 stopped"
}

cmd_restart_coordinator() {
  need_ha
  coordinator_n "${1:-}" restart-coordinator
  if pid_ours "$(pid_of "coordinator$1")"; then
    die "coordinator$1 still runs (pid $(pid_of "coordinator$1")); fleet.sh stop-coordinator $1 first"
  fi
  start_coordinator "$1"
  log "coordinator$1 restarted at $(cat "$STATE/coordinator$1.address") (pid $(pid_of "coordinator$1"))"
}

cmd_stop_etcd() {
  need_ha
  coordinator_n "${1:-}" stop-etcd
  stop_pids "$STATE/pids/etcd$1.pid"
  log "etcd member e$1 stopped"
}

cmd_restart_etcd() {
  need_ha
  coordinator_n "${1:-}" restart-etcd
  if pid_ours "$(pid_of "etcd$1")"; then die "etcd member e$1 still runs (pid $(pid_of "etcd$1"))"; fi
  start_etcd_member "$1"
  local client deadline=$((SECONDS + 15))
  client=$(cut -d' ' -f1 "$STATE/etcd/e$1.ports")
  # Its client port listening is enough: a member alone has no quorum and
  # answers nothing until a peer is back (restart the others the same way).
  while [ "$SECONDS" -lt "$deadline" ]; do
    pid_alive "$(pid_of "etcd$1")" || die "etcd member e$1 exited; see $STATE/logs/etcd$1.log"
    if port_open "$client"; then
      log "etcd member e$1 restarted at 127.0.0.1:$client (pid $(pid_of "etcd$1"))"
      return 0
    fi
    sleep 0.2
  done
  die "etcd member e$1 does not listen on 127.0.0.1:$client; see $STATE/logs/etcd$1.log"
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
  if [ "$HA" = 1 ]; then
    cat >> "$STATE/coordinator.yaml" <<YAML
state:
  backend: etcd
  etcd:
    endpoints: [$(sed 's/,/, /g' "$STATE/etcd.endpoints")]
    prefix: $ETCD_PREFIX
    lease_ttl: $ETCD_LEASE_TTL
YAML
  fi
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
  local f
  for f in "$STATE"/pids/*.pid; do
    [ -f "$f" ] || continue
    if pid_ours "$(cat "$f")"; then die "a fleet already runs in $STATE (fleet.sh stop)"; fi
  done
  rm -rf "$STATE"
  mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/nodes"
  make_store_acl
  make_pki
  for id in r0 r1 r2 r3; do log "redis $id at $(start_redis "$id")"; done
  if [ "$HA" = 1 ]; then
    echo "$ETCD_PREFIX" > "$STATE/etcd.prefix"
    start_etcd
  fi
  write_configs

  if [ "$HA" = 1 ]; then
    # Three coordinators on the same etcd: whichever wins the campaign leads.
    local n
    for n in 0 1 2; do
      start_coordinator "$n"
      log "coordinator$n at $(cat "$STATE/coordinator$n.address")"
    done
    cat "$STATE"/coordinator[012].address | paste -sd, - > "$STATE/coordinator.address"
    local line=""
    for _ in $(seq 1 100); do  # 10 s at most
      line=$(leader_line) && break
      sleep 0.1
    done
    [ -n "$line" ] || die "no coordinator won the etcd campaign; see $STATE/logs/coordinator*.log"
    log "leader: $line (the others stand by)"
  else
    mkdir -p "$STATE/coordinator-data"
    # shellcheck disable=SC2046
    setsid "$COORD_BIN" --listen 127.0.0.1:0 --port-file "$STATE/coordinator.port" \
      --data-dir "$STATE/coordinator-data" --config "$STATE/coordinator.yaml" \
      $(server_security coordinator) \
      >>"$STATE/logs/coordinator.log" 2>&1 < /dev/null &
    echo $! > "$STATE/pids/coordinator.pid"
    local cport
    cport=$(wait_port_file "$STATE/coordinator.port" "$(pid_of coordinator)" coordinator)
    echo "127.0.0.1:$cport" > "$STATE/coordinator.address"
    log "coordinator at 127.0.0.1:$cport"
  fi

  : > "$STATE/workers"
  for w in 0 1; do
    # shellcheck disable=SC2046
    setsid "$WORKER_BIN" --listen 127.0.0.1:0 --port-file "$STATE/worker$w.port" \
      --coordinator "$(cat "$STATE/coordinator.address")" --config "$STATE/worker.yaml" \
      $(server_security worker) \
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
  if pid_ours "$(pid_of "$id")"; then cat "$STATE/nodes/$id/address"; return 0; fi
  start_redis "$id"
}

cmd_status() {
  [ -d "$STATE/pids" ] || { echo "no fleet in $STATE"; return 1; }
  local f name pid
  for f in "$STATE"/pids/*.pid; do
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    if pid_ours "$pid"; then state=running; else state=stopped; fi
    printf '%-12s pid %-8s %s\n' "$name" "$pid" "$state"
  done
  if is_ha && { pid_ours "$(pid_of etcd0)" || pid_ours "$(pid_of etcd1)" || pid_ours "$(pid_of etcd2)"; }; then
    echo
    etcdctl_ endpoint status --write-out table 2>/dev/null || echo "etcd: some members do not answer"
    echo "leader (etcd key $(cat "$STATE/etcd.prefix")/leader): $(leader_line || echo none)"
    echo
  fi
  local any_coord=0
  for f in "$STATE"/pids/coordinator*.pid; do
    [ -f "$f" ] && pid_ours "$(cat "$f")" && any_coord=1
  done
  if [ "$any_coord" = 1 ]; then
    # shellcheck disable=SC2046
    "$CTL_BIN" --coordinator "$(cat "$STATE/coordinator.address")" $(ctl_security) status || true
  fi
}

# SIGTERM the recorded pids of these pid files, wait up to 5 s, then SIGKILL.
stop_pids() {  # pid files...
  local f pid any
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if pid_ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for _ in $(seq 1 50); do
    any=0
    for f in "$@"; do [ -f "$f" ] && pid_ours "$(cat "$f")" && any=1; done
    [ "$any" = 0 ] && break
    sleep 0.1
  done
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if pid_ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  return 0
}

cmd_stop() {
  [ -d "$STATE/pids" ] || { log "no fleet in $STATE"; return 0; }
  local f others=()
  # Workers first, then the coordinators, then the nodes; etcd last (HA), once
  # no coordinator needs it; only pids we recorded.
  for f in "$STATE"/pids/*.pid; do
    case "$(basename "$f")" in worker*|coordinator*|r*|etcd*) ;; *) others+=("$f") ;; esac
  done
  stop_pids "$STATE"/pids/worker*.pid "$STATE"/pids/coordinator*.pid "$STATE"/pids/r*.pid \
    ${others[@]+"${others[@]}"}
  # One member at a time: a member that leads etcd hands its leadership to a
  # live peer at once; stopped together, it would wait for a hand-over to a
  # peer that is itself going away.
  for f in "$STATE"/pids/etcd*.pid; do stop_pids "$f"; done
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
  leader) cmd_leader ;;
  kill-leader) shift; cmd_kill_leader "$@" ;;
  stop-coordinator) shift; cmd_stop_coordinator "$@" ;;
  restart-coordinator) shift; cmd_restart_coordinator "$@" ;;
  stop-etcd) shift; cmd_stop_etcd "$@" ;;
  restart-etcd) shift; cmd_restart_etcd "$@" ;;
  *) echo "usage: fleet.sh start|init|add-node ID|status|stop|env|leader|kill-leader [SIG]|stop-coordinator N|restart-coordinator N|stop-etcd N|restart-etcd N" >&2; exit 2 ;;
esac
