#!/usr/bin/env bash
# Instructions per request that `agent-auth serve --demo` (release build, line tables for
# attribution) executes for `GET /demo/ping` with a valid token and for `GET /healthz`, counted
# by callgrind on an exact number of requests, so that the figure does not depend on how busy
# this shared machine is. The companion of `benches/served.sh`, which measures requests/s.
#
#   benches/served_callgrind.sh sqlite              # a SQLite file in a temporary directory
#   benches/served_callgrind.sh postgres URL        # a PostgreSQL database URL (it is migrated)
#   REQUESTS=5000 SERVE_ARGS="--no-cache" KEEP=/tmp/cg benches/served_callgrind.sh sqlite
#
# Needs `valgrind` and `curl`. Each route is asked REQUESTS times over one kept-alive
# connection (curl reuses it across the URLs of one config file). The server's background
# tasks (the verdict cache reading the change log, the audit writer's timer, the pools) run
# meanwhile; their instructions are measured alone over the same wall time and subtracted.
# With KEEP=DIR the callgrind dumps are kept there, for `callgrind_annotate`.
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:?usage: benches/served_callgrind.sh sqlite | postgres URL}
requests=${REQUESTS:-2000}
warmup=${WARMUP:-300}

for tool in valgrind callgrind_control curl; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install valgrind curl)"; exit 1; }
done
# Line tables only: callgrind can name the source lines, the code is the release build's.
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build -q --release -p agent-auth
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
binary="$target_dir/release/agent-auth"

work=$(mktemp -d)
case "$backend" in
  sqlite) database="sqlite://$work/served.db" ;;
  postgres) database=${2:?postgres needs a database URL} ;;
  *) echo "unknown backend $backend"; exit 1 ;;
esac

out="$work/serve.log"
# As in served.sh: request logs off (RUST_LOG=warn), the defaults otherwise.
# `--collect-atstart=yes` and zeroing before each measure: start-up is not counted.
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out.%p" \
  "$binary" --database-url "$database" serve --demo --listen 127.0.0.1:0 ${SERVE_ARGS:-} >"$out" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do grep -q '^listening on' "$out" && grep -q 'agent_demo-bot_' "$out" && break; sleep 0.2; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" | head -1)
token=$(grep -o 'agent_demo-bot_[0-9a-f]\{64\}' "$out" | head -1)
[ -n "$base" ] && [ -n "$token" ] || { cat "$out"; echo "serve did not start"; exit 1; }
# The process valgrind runs (it execs the binary in place: the same id).
pid=$server

urls() { # urls <path> <count>: a curl config asking for <path> <count> times
  for _ in $(seq 1 "$2"); do printf 'url = "%s%s"\n' "$base" "$1"; done
}
ask() { # ask <path> <count> [curl args]: fails unless every answer is a 200
  local path=$1 count=$2; shift 2
  urls "$path" "$count" >"$work/urls"
  local codes
  codes=$(curl -s -o /dev/null -w '%{http_code}\n' "$@" -K "$work/urls" | sort | uniq -c)
  [ "$(echo "$codes" | awk '$2 == 200 {print $1}')" = "$count" ] \
    || { echo "$path: not $count answers 200: $codes"; exit 1; }
}
dump_total() { # the instructions of the dump just written (the newest file)
  local file
  file=$(ls -t "$work"/callgrind.out.* | head -1)
  awk '/^(summary|totals):/ {print $2; exit}' "$file"
}
measure() { # measure <label> <path> [curl args]: instructions of <count> requests, and seconds
  local label=$1 path=$2; shift 2
  callgrind_control -z "$pid" >/dev/null 2>&1
  local started ended
  started=$(date +%s.%N)
  ask "$path" "$requests" "$@"
  ended=$(date +%s.%N)
  callgrind_control -d "$label" "$pid" >/dev/null 2>&1
  echo "$(dump_total) $(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.3f", b - a }')"
}
idle_rate() { # instructions per second with no request
  callgrind_control -z "$pid" >/dev/null 2>&1
  local started ended
  started=$(date +%s.%N)
  sleep "${IDLE_SECONDS:-5}"
  ended=$(date +%s.%N)
  callgrind_control -d idle "$pid" >/dev/null 2>&1
  awk -v i="$(dump_total)" -v a="$started" -v b="$ended" 'BEGIN { printf "%.0f", i / (b - a) }'
}

auth=(-H "Authorization: Bearer $token")
# Warm up both routes: the verdict cache holds the token, pools and lazy state are made.
ask /healthz "$warmup"
ask /demo/ping "$warmup" "${auth[@]}"

echo "backend $backend, $requests requests per route over one connection, serve ${SERVE_ARGS:-(defaults)}"
idle=$(idle_rate)
read -r healthz_total healthz_seconds < <(measure healthz /healthz)
read -r ping_total ping_seconds < <(measure ping /demo/ping "${auth[@]}")
idle_after=$(idle_rate)
idle=$(( (idle + idle_after) / 2 ))
per_request() { # per_request <total> <seconds>
  awk -v t="$1" -v s="$2" -v i="$idle" -v n="$requests" 'BEGIN { printf "%.0f", (t - i * s) / n }'
}
healthz=$(per_request "$healthz_total" "$healthz_seconds")
ping=$(per_request "$ping_total" "$ping_seconds")
printf 'idle: %s instructions/s (subtracted over each run)\n' "$idle"
printf '/healthz:   %s instructions per request (%s in %ss)\n' "$healthz" "$healthz_total" "$healthz_seconds"
printf '/demo/ping: %s instructions per request (%s in %ss)\n' "$ping" "$ping_total" "$ping_seconds"
awk -v p="$ping" -v h="$healthz" 'BEGIN { printf "ratio /demo/ping / /healthz: %.3f (its inverse %.3f); the layer and its stack: %d instructions per request\n", p / h, h / p, p - h }'
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP"
  cp "$work"/callgrind.out.* "$KEEP"/
  echo "dumps kept in $KEEP"
fi
