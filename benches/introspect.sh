#!/usr/bin/env bash
# Token introspection (RFC 7662) through `agent-auth serve` (release build, SQLite), against
# two references measured alternately in the same run, so that a slow spell of this shared
# machine slows all three alike:
#
#   (a) ours: `POST /oauth/introspect`, client_secret_basic, the `--demo` token;
#   (b) the same server's unauthenticated `GET /healthz` (what the server itself costs);
#   (c) the peer: oidc-provider (npm, a certified OpenID provider; benches/introspect/peer.mjs)
#       with introspection and its in-memory adapter, introspecting an opaque client_credentials
#       token with client_secret_basic.
#
#   benches/introspect.sh
#   ROUNDS=3 SECONDS_PER_RUN=10 CONNECTIONS=32 THREADS=2 SERVE_ARGS="" benches/introspect.sh
#
# Needs (installs nothing): `wrk` (Debian: apt-get install wrk), `node` (oidc-provider asks for
# 22 LTS or later; 20 runs it with a warning), `curl`, and `npm ci` run once in
# benches/introspect. Prints each round (requests/s and p99 of each side) and the medians over
# the rounds of the ratios and p99s; fails if any answer measured is not a 2xx.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
seconds=${SECONDS_PER_RUN:-10}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}

missing=()
for tool in wrk node curl cargo; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ ${#missing[@]} -eq 0 ] || { echo "missing: ${missing[*]} (wrk: apt-get install wrk)"; exit 1; }
[ -d benches/introspect/node_modules/oidc-provider ] \
  || { echo "the peer is not installed: (cd benches/introspect && npm ci)"; exit 1; }

cargo build -q --release -p agent-auth
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
binary="$target_dir/release/agent-auth"

work=$(mktemp -d)
database="sqlite://$work/introspect.db"
server= peer=
stop() {
  for pid in $server $peer; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stop EXIT

# Ours. Request logs off (RUST_LOG=warn), as in benches/served.sh: the log line would be much
# of what is measured.
out="$work/serve.log"
RUST_LOG=warn "$binary" --database-url "$database" serve --demo --listen 127.0.0.1:0 ${SERVE_ARGS:-} >"$out" 2>&1 &
server=$!
for _ in $(seq 1 100); do grep -q '^listening on' "$out" && grep -q 'agent_demo-bot_' "$out" && break; sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" | head -1)
token=$(grep -o 'agent_demo-bot_[0-9a-f]\{64\}' "$out" | head -1)
[ -n "$base" ] && [ -n "$token" ] || { cat "$out"; echo "serve did not start"; exit 1; }
registered=$("$binary" --database-url "$database" --json client register --name rs --introspect)
json_field() { node -e 'const v = JSON.parse(process.argv[1])[process.argv[2]]; if (typeof v !== "string") process.exit(1); console.log(v)' "$1" "$2"; }
client_id=$(json_field "$registered" client_id)
client_secret=$(json_field "$registered" client_secret)
our_basic=$(printf '%s:%s' "$client_id" "$client_secret" | base64 -w0)

# The peer.
peer_out="$work/peer.log"
(cd benches/introspect && NODE_ENV=production exec node peer.mjs) >"$peer_out" 2>"$work/peer.err" &
peer=$!
for _ in $(seq 1 100); do grep -qs '^token ' "$peer_out" && break; sleep 0.1; done
peer_port=$(awk '/^port / {print $2}' "$peer_out")
peer_client=$(awk '/^client / {print $2 ":" $3}' "$peer_out")
peer_token=$(awk '/^token / {print $2}' "$peer_out")
[ -n "$peer_token" ] || { cat "$peer_out" "$work/peer.err"; echo "the peer did not start"; exit 1; }
peer_basic=$(printf '%s' "$peer_client" | base64 -w0)
peer_url="http://127.0.0.1:$peer_port/token/introspection"

# Both answer active for their token before anything is measured (the peer checked its own).
answer=$(curl -s -u "$client_id:$client_secret" --data-urlencode "token=$token" "$base/oauth/introspect")
case "$answer" in
  *'"active":true'*) ;;
  *) echo "our introspection does not answer active: $answer"; exit 1 ;;
esac

# measure <url> [wrk args…]: "<requests/s> <p99 in ms>"; fails on any non-2xx answer or
# socket error, so that a refusal is never measured as a fast answer.
measure() {
  local url=$1; shift
  local report
  report=$(wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency "$@" "$url")
  if grep -q 'Non-2xx\|Socket errors' <<<"$report"; then
    echo "$report" >&2
    echo "errors while measuring $url" >&2
    return 1
  fi
  awk '
    /Requests\/sec/ { rps = $2 }
    $1 == "99%" {
      v = $2
      if (v ~ /us$/) p99 = substr(v, 1, length(v) - 2) / 1000
      else if (v ~ /ms$/) p99 = substr(v, 1, length(v) - 2)
      else if (v ~ /s$/) p99 = substr(v, 1, length(v) - 1) * 1000
    }
    END { printf "%s %.3f\n", rps, p99 }
  ' <<<"$report"
}

script=benches/introspect/introspect.lua
echo "$connections connections, $threads wrk threads, ${seconds}s per run, $rounds rounds;" \
  "serve on SQLite ${SERVE_ARGS:-(defaults)}; peer oidc-provider $(node -p 'require("./benches/introspect/node_modules/oidc-provider/package.json").version') on node $(node --version)"
rows=()
for round in $(seq 1 "$rounds"); do
  read -r ours ours_p99 < <(INTROSPECT_BASIC=$our_basic INTROSPECT_TOKEN=$token measure "$base/oauth/introspect" -s "$script")
  read -r health health_p99 < <(measure "$base/healthz")
  read -r theirs theirs_p99 < <(INTROSPECT_BASIC=$peer_basic INTROSPECT_TOKEN=$peer_token measure "$peer_url" -s "$script")
  [ -n "${ours:-}" ] && [ -n "${health:-}" ] && [ -n "${theirs:-}" ] || exit 1
  vs_health=$(awk -v a="$ours" -v b="$health" 'BEGIN { printf "%.3f", a / b }')
  vs_peer=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }')
  rows+=("$vs_health $vs_peer $ours_p99 $health_p99 $theirs_p99")
  printf 'round %d: introspection %s req/s (p99 %s ms), /healthz %s req/s (p99 %s ms), peer %s req/s (p99 %s ms); ours/healthz %s, ours/peer %s\n' \
    "$round" "$ours" "$ours_p99" "$health" "$health_p99" "$theirs" "$theirs_p99" "$vs_health" "$vs_peer"
done
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%s (min %s, max %s)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
column() { printf '%s\n' "${rows[@]}" | awk -v c="$1" '{ print $c }' | median; }
echo "median over $rounds rounds:"
echo "  our introspection / our /healthz: $(column 1)"
echo "  our introspection / peer introspection: $(column 2)"
echo "  p99 ms: ours $(column 3), /healthz $(column 4), peer $(column 5)"
