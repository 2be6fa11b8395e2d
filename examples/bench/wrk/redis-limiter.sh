#!/usr/bin/env bash
# The Redis limiter next to the in-process one, measured by wrk (an
# out-of-process load generator): two release servers on SQLite, one with
# REDIS_URL, one without, each with an API key limited to 1,000,000 calls a minute (the most a key may have)
# (every call pays for the limit; a run makes fewer, so none is refused); `orgs.get` with the key,
# rounds interleaved. Prints each round and the median ratio.
#
# Settings: REDIS_URL (default redis://127.0.0.1:6379), ROUNDS (3), SECS (10),
# CONNECTIONS (32), THREADS (2). Needs wrk, curl, python3 and a release build
# (`cargo build --release -p trellis-server`).
set -euo pipefail
cd "$(dirname "$0")/../../.."

redis_url=${REDIS_URL:-redis://127.0.0.1:6379}
rounds=${ROUNDS:-3}
secs=${SECS:-10}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}
bin=${TRELLIS_BIN:-target/release/trellis}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -x "$bin" ] || { echo "$bin is missing: cargo build --release -p trellis-server" >&2; exit 1; }

work=$(mktemp -d)
# Servers are started in command substitutions (subshells): their pids go to a file.
cleanup() {
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$work/pids"
  sleep 0.5
  rm -rf "$work"
}
touch "$work/pids"
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start NAME [REDIS_URL]: a server on a free port; prints its port.
start() {
  local name=$1 port
  port=$(free_port)
  mkdir -p "$work/$name"
  env -u DATABASE_URL -u REDIS_URL TRELLIS_LISTEN="127.0.0.1:$port" TRELLIS_DATA_DIR="$work/$name" \
    TRELLIS_LOG_FORMAT=json RUST_LOG=warn ${2:+REDIS_URL=$2} TRELLIS_REDIS_PREFIX="trellis-wrk-$$" \
    "$bin" >"$work/$name.log" 2>&1 &
  echo $! >>"$work/pids"
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && { echo "$port"; return; }
    sleep 0.1
  done
  echo "server $name did not start: $(tail -5 "$work/$name.log")" >&2
  exit 1
}

rpc() { # rpc PORT AUTH METHOD PARAMS -> result JSON
  curl -sf "http://127.0.0.1:$1/rpc" -H 'content-type: application/json' ${2:+-H "authorization: Bearer $2"} \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$3\",\"params\":$4}" |
    python3 -c 'import json, sys; a = json.load(sys.stdin); print(json.dumps(a["result"]) if "result" in a else sys.exit(json.dumps(a)))'
}
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

# setup PORT: an account, an organization and a limited key; prints "KEY ORG".
setup() {
  local port=$1 creds token org key
  creds='{"email":"wrk@example.com","password":"correct horse battery staple"}'
  rpc "$port" "" auth.register "$creds" >/dev/null
  token=$(rpc "$port" "" auth.login "$creds" | field '["accessToken"]')
  org=$(rpc "$port" "$token" orgs.create '{"name":"Wrk","slug":"wrk"}' | field '["id"]')
  key=$(rpc "$port" "$token" apiKeys.create \
    "{\"orgId\":\"$org\",\"name\":\"wrk\",\"scopes\":[\"org:read\"],\"rateLimitPerMinute\":1000000}" | field '["key"]')
  rpc "$port" "$key" orgs.get "{\"orgId\":\"$org\"}" >/dev/null
  echo "$key $org"
}

local_port=$(start memory)
redis_port=$(start redis "$redis_url")
read -r local_key local_org < <(setup "$local_port")
read -r redis_key redis_org < <(setup "$redis_port")
health=$(rpc "$redis_port" "" health.check '{}' | field '["checks"]["cache"]')
echo "server with Redis: cache $health"

measure() { # measure PORT KEY ORG -> calls/s
  KEY=$2 ORG=$3 wrk -t"$threads" -c"$connections" -d"${secs}s" -s examples/bench/wrk/orgs-get.lua \
    "http://127.0.0.1:$1/rpc" | grep '^rpc_errors=' | tee /dev/stderr | sed -E 's/.* rps=([0-9]+).*/\1/'
}

ratios=()
for round in $(seq 1 "$rounds"); do
  KEY=$local_key ORG=$local_org wrk -t1 -c4 -d1s -s examples/bench/wrk/orgs-get.lua "http://127.0.0.1:$local_port/rpc" >/dev/null
  KEY=$redis_key ORG=$redis_org wrk -t1 -c4 -d1s -s examples/bench/wrk/orgs-get.lua "http://127.0.0.1:$redis_port/rpc" >/dev/null
  echo "round $round: in-process limiter" >&2
  local_rps=$(measure "$local_port" "$local_key" "$local_org")
  echo "round $round: Redis limiter" >&2
  redis_rps=$(measure "$redis_port" "$redis_key" "$redis_org")
  ratio=$(python3 -c "print(f'{$redis_rps / $local_rps:.3f}')")
  ratios+=("$ratio")
  echo "round $round: in-process $local_rps calls/s, Redis $redis_rps calls/s, ratio $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "Redis limiter vs in-process (orgs.get + API key, wrk -t$threads -c$connections, ${secs}s x $rounds): median ratio $median"
