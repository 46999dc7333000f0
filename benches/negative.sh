#!/usr/bin/env bash
# How many times `agent-auth serve` (release build) reads PostgreSQL's token table while a client
# loops on a revoked token, and while one loops on a made-up token of the right shape: the
# verdict cache holds both refusals, so each costs one lookup per negative lifetime (the cache
# bound, 1 s), not one per request. Counted by PostgreSQL itself (`pg_stat_user_tables`: index
# and sequential scans of `agent_auth_tokens`), beside the audit rows the refusals wrote.
#
#   benches/negative.sh postgres://postgres@127.0.0.1:5432/negative   # a database of its own
#   REQUESTS=20000 SERVE_ARGS=--no-cache benches/negative.sh URL   # without the cache, to compare
#
# Needs `curl`, `psql` and `python3`. The database is migrated and gets the demo's records.
set -euo pipefail
cd "$(dirname "$0")/.."

url=${1:?usage: benches/negative.sh POSTGRES_URL}
requests=${REQUESTS:-10000}
for tool in curl psql python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed"; exit 1; }
done
cargo build -q --release -p agent-auth
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
binary="$target_dir/release/agent-auth"

work=$(mktemp -d)
out="$work/serve.log"
RUST_LOG=warn "$binary" --database-url "$url" serve --demo --listen 127.0.0.1:0 ${SERVE_ARGS:-} >"$out" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q '^listening on' "$out" && grep -q 'agent_demo-bot_' "$out" && break; sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" | head -1)
token=$(grep -o 'agent_demo-bot_[0-9a-f]\{64\}' "$out" | head -1)
[ -n "$base" ] && [ -n "$token" ] || { cat "$out"; echo "serve did not start"; exit 1; }
"$binary" --database-url "$url" token revoke-all demo-bot >/dev/null
# A token of the demo's shape and checksum that was never issued.
made_up=$(python3 -c 'import secrets, zlib; t = "agent_demo-bot_" + secrets.token_hex(28); print(t + "%08x" % zlib.crc32(t.encode()))')
# The revocation reaches the cache within its bound.
sleep 1.5

lookups() {
  # A backend reports its counts when idle, at most once a second.
  sleep 2
  psql "$url" -Atc "SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables WHERE relname = 'agent_auth_tokens'"
}
audit_rows() {
  psql "$url" -Atc "SELECT count(*) FROM agent_auth_audit_events"
}

for case in revoked made-up; do
  presented=$token
  [ "$case" = made-up ] && presented=$made_up
  config="$work/requests.curl"
  for _ in $(seq 1 "$requests"); do printf 'url = "%s/demo/ping"\noutput = "/dev/null"\n' "$base"; done >"$config"
  lookups_before=$(lookups)
  rows_before=$(audit_rows)
  started=$(date +%s.%N)
  answers=$(curl -s -K "$config" -H "Authorization: Bearer $presented" -w '%{http_code}\n' | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
  elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  sleep 1 # the audit writer's linger
  lookups_after=$(lookups)
  rows_after=$(audit_rows)
  printf '%s token: %d requests in %s s, answers [%s], token-table reads %d, audit rows written %d\n' \
    "$case" "$requests" "$elapsed" "${answers% }" "$((lookups_after - lookups_before))" "$((rows_after - rows_before))"
done
