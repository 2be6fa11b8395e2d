#!/usr/bin/env bash
# Three Trellis replicas behind HAProxy on this machine, sharing one PostgreSQL
# database, one Redis and one signing secret.
#
#   bash deploy/cluster.sh up      build, migrate, start the replicas and HAProxy
#   bash deploy/cluster.sh status  which of them are running
#   bash deploy/cluster.sh down    stop what `up` started
#
# Settings (environment), with their defaults:
#   TRELLIS_LB_BIND      127.0.0.1:8080   where HAProxy listens
#   TRELLIS_REPLICA_1    127.0.0.1:8081   where each replica listens
#   TRELLIS_REPLICA_2    127.0.0.1:8082
#   TRELLIS_REPLICA_3    127.0.0.1:8083
#   TRELLIS_METRICS_1    127.0.0.1:9464   each replica's metrics listener (what
#   TRELLIS_METRICS_2    127.0.0.1:9465   deploy/prometheus/prometheus.yml scrapes;
#   TRELLIS_METRICS_3    127.0.0.1:9466   never behind the balancer)
#   DATABASE_URL         postgres://postgres@127.0.0.1:5432/trellis_cluster (created if missing)
#   REDIS_URL            redis://127.0.0.1:6379
#   TRELLIS_JWT_SECRET   generated once into deploy/.run/jwt-secret
#   TRELLIS_BIN          a trellis binary to use instead of building target/release/trellis
# Any other TRELLIS_* variable set (TRELLIS_ENCRYPTION_KEYS, ...) reaches every
# replica alike. Logs, pids and data directories are in deploy/.run/.
set -euo pipefail
cd "$(dirname "$0")/.."

run_dir=deploy/.run
replicas=(1 2 3)

export TRELLIS_LB_BIND="${TRELLIS_LB_BIND:-127.0.0.1:8080}"
export TRELLIS_REPLICA_1="${TRELLIS_REPLICA_1:-127.0.0.1:8081}"
export TRELLIS_REPLICA_2="${TRELLIS_REPLICA_2:-127.0.0.1:8082}"
export TRELLIS_REPLICA_3="${TRELLIS_REPLICA_3:-127.0.0.1:8083}"
export TRELLIS_METRICS_1="${TRELLIS_METRICS_1:-127.0.0.1:9464}"
export TRELLIS_METRICS_2="${TRELLIS_METRICS_2:-127.0.0.1:9465}"
export TRELLIS_METRICS_3="${TRELLIS_METRICS_3:-127.0.0.1:9466}"

log() { printf '==> %s\n' "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The address of replica $1 (host:port).
replica_addr() { local var="TRELLIS_REPLICA_$1"; printf '%s' "${!var}"; }

# The metrics listener of replica $1 (host:port).
metrics_addr() { local var="TRELLIS_METRICS_$1"; printf '%s' "${!var}"; }

# A URL for an address HAProxy or a replica binds: a wildcard host is reached
# on loopback.
url_of() {
  case $1 in
    :*) printf 'http://127.0.0.1%s' "$1" ;;
    '*:'* | 0.0.0.0:*) printf 'http://127.0.0.1:%s' "${1##*:}" ;;
    *) printf 'http://%s' "$1" ;;
  esac
}

# Whether process $1 still runs (an exited one waiting to be reaped does not).
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${state#Z}" = "$state" ]
}

# The pid in pidfile $1 when that process is running and is a $2 (its command
# name), so a stale pidfile never names an unrelated process.
running_pid() {
  local pidfile=$1 name=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && alive "$pid" && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$name" ] || return 1
  printf '%s' "$pid"
}

ensure_haproxy() {
  command -v haproxy >/dev/null 2>&1 && return
  log "HAProxy is not installed: installing it"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq haproxy >/dev/null
}

# The shared signing secret: the one given, else the one kept in the run
# directory, else a new one kept there.
jwt_secret() {
  local file=$run_dir/jwt-secret
  if [ -n "${TRELLIS_JWT_SECRET:-}" ]; then printf '%s' "$TRELLIS_JWT_SECRET"; return; fi
  if [ ! -s "$file" ]; then
    (
      umask 077
      openssl rand -hex 32 2>/dev/null >"$file" || python3 -c 'import secrets; print(secrets.token_hex(32))' >"$file"
    )
  fi
  cat "$file"
}

# Creates the database of $DATABASE_URL when the server has none of that name.
ensure_database() {
  local name admin_url
  command -v psql >/dev/null 2>&1 || die "psql is needed to create the database (apt-get install postgresql-client)"
  name=${DATABASE_URL##*/}
  name=${name%%\?*}
  admin_url="${DATABASE_URL%/*}/postgres"
  psql "$admin_url" -qAtc 'SELECT 1' >/dev/null 2>&1 ||
    die "cannot reach PostgreSQL at $admin_url (start it, or set DATABASE_URL)"
  if [ -z "$(psql "$admin_url" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]; then
    log "creating database $name"
    psql "$admin_url" -qc "CREATE DATABASE \"$name\"" >/dev/null
  fi
}

# Fails when something already listens on address $1 (curl's exit status 7:
# nothing answered the connection).
ensure_free() {
  local status=0
  curl -s -o /dev/null --max-time 2 "$(url_of "$1")/" || status=$?
  [ "$status" = 7 ] || die "something already listens on $1 (choose another address; see the top of deploy/cluster.sh)"
}

# Whether every replica and the balancer answer /readyz with 200.
all_ready() {
  local i
  for i in "${replicas[@]}"; do
    curl -sf -o /dev/null "$(url_of "$(replica_addr "$i")")/readyz" || return 1
  done
  curl -sf -o /dev/null "$(url_of "$TRELLIS_LB_BIND")/readyz"
}

# Ends a failed `up`: the tail of log $2, everything stopped, message $1.
fail_up() {
  tail -n 20 "$2" >&2
  down
  die "$1 (log above, in $2)"
}

up() {
  local i pid addr bin
  for i in "${replicas[@]}"; do
    if pid=$(running_pid "$run_dir/replica-$i.pid" trellis); then
      die "replica $i is already running (pid $pid): \`bash deploy/cluster.sh down\` first"
    fi
  done
  if pid=$(running_pid "$run_dir/haproxy.pid" haproxy); then
    die "HAProxy is already running (pid $pid): \`bash deploy/cluster.sh down\` first"
  fi

  for i in "${replicas[@]}"; do
    ensure_free "$(replica_addr "$i")"
    ensure_free "$(metrics_addr "$i")"
  done
  ensure_free "$TRELLIS_LB_BIND"

  ensure_haproxy
  mkdir -p "$run_dir"

  if [ -n "${TRELLIS_BIN:-}" ]; then
    bin=$TRELLIS_BIN
  else
    log "cargo build --release -p trellis-server"
    cargo build --release -p trellis-server
    bin=target/release/trellis
  fi
  [ -x "$bin" ] || die "no server binary at $bin"
  # `down` and `status` know replicas by that process name.
  [ "$(basename "$bin")" = trellis ] || die "TRELLIS_BIN must name a file called trellis, not $bin"

  export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/trellis_cluster}"
  export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
  local secret_from="TRELLIS_JWT_SECRET (given)"
  [ -n "${TRELLIS_JWT_SECRET:-}" ] || secret_from=$run_dir/jwt-secret
  TRELLIS_JWT_SECRET=$(jwt_secret)
  export TRELLIS_JWT_SECRET
  # Replicas take HAProxy's X-Forwarded-For as the client's address.
  export TRELLIS_TRUSTED_PROXIES=127.0.0.1

  ensure_database
  if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG; then
    log "Redis does not answer at $REDIS_URL: the replicas will run degraded (per-replica rate limits) until it does"
  fi

  # Once, before the replicas: they would otherwise all migrate at once.
  log "migrating $DATABASE_URL"
  TRELLIS_DATA_DIR="$run_dir/replica-1" "$bin" migrate >"$run_dir/migrate.log" 2>&1 ||
    { cat "$run_dir/migrate.log" >&2; die "migration failed (log above, also in $run_dir/migrate.log)"; }

  for i in "${replicas[@]}"; do
    addr=$(replica_addr "$i")
    mkdir -p "$run_dir/replica-$i"
    TRELLIS_LISTEN=$addr TRELLIS_METRICS_LISTEN=$(metrics_addr "$i") TRELLIS_DATA_DIR="$run_dir/replica-$i" \
      nohup "$bin" >"$run_dir/replica-$i.log" 2>&1 &
    echo $! >"$run_dir/replica-$i.pid"
    log "replica $i on $addr, metrics on $(metrics_addr "$i") (pid $!)"
  done

  # What `status` reports on, whatever the environment is then.
  printf 'TRELLIS_LB_BIND=%q\nTRELLIS_REPLICA_1=%q\nTRELLIS_REPLICA_2=%q\nTRELLIS_REPLICA_3=%q\n' \
    "$TRELLIS_LB_BIND" "$TRELLIS_REPLICA_1" "$TRELLIS_REPLICA_2" "$TRELLIS_REPLICA_3" >"$run_dir/addresses"

  haproxy -c -q -f deploy/haproxy.cfg
  # In the foreground (-db) under nohup, so replicas going down and up are
  # written to its log.
  nohup haproxy -f deploy/haproxy.cfg -db >"$run_dir/haproxy.log" 2>&1 &
  echo $! >"$run_dir/haproxy.pid"
  log "HAProxy on $TRELLIS_LB_BIND (pid $!)"

  local lb
  lb=$(url_of "$TRELLIS_LB_BIND")
  for _ in $(seq 1 120); do
    all_ready && break
    for i in "${replicas[@]}"; do
      running_pid "$run_dir/replica-$i.pid" trellis >/dev/null || fail_up "replica $i stopped" "$run_dir/replica-$i.log"
    done
    running_pid "$run_dir/haproxy.pid" haproxy >/dev/null || fail_up "HAProxy stopped" "$run_dir/haproxy.log"
    sleep 0.5
  done
  all_ready || fail_up "not every replica and $lb/readyz answered 200 within a minute" "$run_dir/haproxy.log"
  running_pid "$run_dir/haproxy.pid" haproxy >/dev/null || fail_up "HAProxy stopped" "$run_dir/haproxy.log"

  cat <<TXT

Trellis cluster up:
  JSON-RPC       $lb/rpc (WebSocket on the same path)
  replicas       $TRELLIS_REPLICA_1 $TRELLIS_REPLICA_2 $TRELLIS_REPLICA_3
  metrics        $TRELLIS_METRICS_1 $TRELLIS_METRICS_2 $TRELLIS_METRICS_3 (deploy/prometheus/prometheus.yml)
  database       $(printf '%s' "$DATABASE_URL" | sed -E 's#://([^:@/]*):[^@/]*@#://\1:***@#')
  Redis          $REDIS_URL
  logs, pids     $run_dir/ (replica-N.log, haproxy.log)
  signing secret $secret_from
Stop it with \`just cluster-down\` (bash deploy/cluster.sh down).
TXT
}

# Sends TERM to the process of pidfile $1 (a $2), waits for it to end, then
# KILL after $3 seconds.
stop() {
  local pidfile=$1 name=$2 grace=$3 pid
  if pid=$(running_pid "$pidfile" "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((grace * 10))); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "$pidfile: pid $pid still running after ${grace}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

down() {
  # The balancer first, so no new call reaches a replica that is stopping.
  stop "$run_dir/haproxy.pid" haproxy 5
  local i
  for i in "${replicas[@]}"; do
    # Replicas let calls under way finish (TRELLIS_SHUTDOWN_GRACE_MS, 30 s).
    stop "$run_dir/replica-$i.pid" trellis 35
  done
  rm -f "$run_dir/addresses"
}

status() {
  local i pid
  # The addresses the running cluster was started with.
  # shellcheck source=/dev/null
  [ -f "$run_dir/addresses" ] && . "$run_dir/addresses"
  for i in "${replicas[@]}"; do
    if pid=$(running_pid "$run_dir/replica-$i.pid" trellis); then
      printf 'replica %s  up    pid %s  %s  readyz: %s\n' "$i" "$pid" "$(replica_addr "$i")" \
        "$(curl -s -o /dev/null -w '%{http_code}' "$(url_of "$(replica_addr "$i")")/readyz" || true)"
    else
      printf 'replica %s  down\n' "$i"
    fi
  done
  if pid=$(running_pid "$run_dir/haproxy.pid" haproxy); then
    printf 'haproxy    up    pid %s  %s  readyz: %s\n' "$pid" "$TRELLIS_LB_BIND" \
      "$(curl -s -o /dev/null -w '%{http_code}' "$(url_of "$TRELLIS_LB_BIND")/readyz" || true)"
  else
    printf 'haproxy    down\n'
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: bash deploy/cluster.sh up|down|status" ;;
esac
