#!/usr/bin/env bash
# What AgentAuthLayer + McpLayer add to an MCP tool call served over real HTTP: requests per
# second of `tools/call` of a trivial tool (2026-07-28: stateless, `Mcp-Method`/`Mcp-Name`
# headers, JSON answers) at `/mcp`, behind the layers with a valid token, against the same
# rmcp service at `/bare`, measured alternately in one run (examples/mcp-server/examples/served.rs,
# release build).
#
#   benches/mcp_served.sh
#   ROUNDS=5 SECONDS_PER_RUN=10 CONNECTIONS=32 benches/mcp_served.sh
#
# Needs `wrk`. Prints each round and the median of the per-round ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-5}
seconds=${SECONDS_PER_RUN:-10}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build -q --release -p mcp-server --example served
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

work=$(mktemp -d)
out="$work/served.log"
"$target_dir/release/examples/served" >"$out" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q '^token ' "$out" && break; sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$out" | head -1)
token=$(sed -n 's/^token //p' "$out")
[ -n "$base" ] && [ -n "$token" ] || { cat "$out"; echo "the server did not start"; exit 1; }

body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}'
cat >"$work/call.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "ping"
LUA
call() { # call <path> [curl args…]: the status of one call
  curl -s -o /dev/null -w '%{http_code}' -X POST "$base$1" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2026-07-28' \
    -H 'mcp-method: tools/call' -H 'mcp-name: ping' --data "$body" "${@:2}"
}
[ "$(call /bare)" = 200 ] || { echo "/bare does not answer the call"; exit 1; }
[ "$(call /mcp -H "Authorization: Bearer $token")" = 200 ] || { echo "/mcp does not admit the token"; exit 1; }
[ "$(call /mcp)" = 401 ] || { echo "/mcp answers without a token"; exit 1; }

rate() { # rate <path> [header]
  local path=$1; shift
  wrk -t"$threads" -c"$connections" -d"${seconds}s" -s "$work/call.lua" "$@" "$base$path" \
    | awk '/Requests\/sec/ {print $2}'
}

echo "$connections connections, ${seconds}s per run"
ratios=()
for round in $(seq 1 "$rounds"); do
  without=$(rate /bare)
  with=$(rate /mcp -H "Authorization: Bearer $token")
  ratio=$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  printf 'round %d: rmcp alone %s req/s, behind the layers %s req/s, ratio %s\n' "$round" "$without" "$with" "$ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END { printf "median ratio %s (min %s, max %s)\n", r[int((NR + 1) / 2)], r[1], r[NR] }'
