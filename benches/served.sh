#!/usr/bin/env bash
# Requests per second through `agent-auth serve` (release build) on a route behind the auth
# layer (`GET /demo/ping` with a valid token) against the same answer without it
# (`GET /healthz`), measured alternately in one run so that a slow spell of this shared machine
# slows both alike.
#
#   benches/served.sh sqlite                 # a SQLite file in a temporary directory
#   benches/served.sh postgres URL           # a PostgreSQL database URL (it is migrated)
#   ROUNDS=5 SECONDS_PER_RUN=10 CONNECTIONS=32 SERVE_ARGS="--no-cache" benches/served.sh sqlite
#
# Needs `wrk`. Prints each round and the median of the per-round ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:?usage: benches/served.sh sqlite | postgres URL}
rounds=${ROUNDS:-5}
seconds=${SECONDS_PER_RUN:-10}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build -q --release -p agent-auth
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
binary="$target_dir/release/agent-auth"

work=$(mktemp -d)
case "$backend" in
  sqlite) database="sqlite://$work/served.db" ;;
  postgres) database=${2:?postgres needs a database URL} ;;
  *) echo "unknown backend $backend"; exit 1 ;;
esac

out="$work/serve.log"
# Request logs off (RUST_LOG=warn): the log line costs both routes alike, and would be most of
# what is measured.
RUST_LOG=warn "$binary" --database-url "$database" serve --demo --listen 127.0.0.1:0 ${SERVE_ARGS:-} >"$out" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q '^listening on' "$out" && grep -q 'agent_demo-bot_' "$out" && break; sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" | head -1)
token=$(grep -o 'agent_demo-bot_[0-9a-f]\{64\}' "$out" | head -1)
[ -n "$base" ] && [ -n "$token" ] || { cat "$out"; echo "serve did not start"; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/demo/ping")" = 200 ] \
  || { echo "the token is not admitted"; exit 1; }

rate() { # rate <path> [header]
  local path=$1; shift
  wrk -t"$threads" -c"$connections" -d"${seconds}s" "$@" "$base$path" | awk '/Requests\/sec/ {print $2}'
}

echo "backend $backend, $connections connections, ${seconds}s per run, serve ${SERVE_ARGS:-(defaults)}"
ratios=()
for round in $(seq 1 "$rounds"); do
  without=$(rate /healthz)
  with=$(rate /demo/ping -H "Authorization: Bearer $token")
  ratio=$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  printf 'round %d: without the layer %s req/s, behind it %s req/s, ratio %s\n' "$round" "$without" "$with" "$ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END { printf "median ratio %s (min %s, max %s)\n", r[int((NR + 1) / 2)], r[1], r[NR] }'
curl -s "$base/readyz"; echo
