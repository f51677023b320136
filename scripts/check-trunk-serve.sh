#!/usr/bin/env bash
# Exercises `trunk serve` against a running demo, as a developer uses it: starts
# `node demo` on its default ports and `trunk serve --release --offline` (Trunk.toml's
# proxies) in front of it, then checks through trunk's port 8080 the page, the first
# dashboard call, a relayed node API call and a relayed event stream (a WebSocket
# upgrade answered 101 with the node's snapshot). Stops both. Needs ports 8080 and
# 8550-8555 free, a release node binary and the web tools (scripts/test.sh has both).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
say() { echo "check-trunk-serve: $*"; }
work=$(mktemp -d)
demo_pid=""
trunk_pid=""
cleanup() {
  [ -n "$trunk_pid" ] && kill "$trunk_pid" 2>/dev/null || true
  [ -n "$demo_pid" ] && kill -INT "$demo_pid" 2>/dev/null || true
  [ -n "$demo_pid" ] && for _ in $(seq 50); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.2; done
  rm -rf "$work"
}
trap cleanup EXIT
for port in 8080 8550 8551 8552 8553; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "port $port is taken: stop what runs there first" >&2
    exit 1
  fi
done
target/release/node demo --web-root dist --logs "$work/logs" --state "$work/state" \
  --node-args "--synthetic-data true" >"$work/demo.log" 2>&1 &
demo_pid=$!
trunk serve --release --offline >"$work/trunk.log" 2>&1 &
trunk_pid=$!
wait_for() {
  local what=$1; shift
  for _ in $(seq 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  say "timed out waiting for $what" >&2
  tail -20 "$work/trunk.log" "$work/demo.log" >&2
  exit 1
}
members_up() { curl -sf http://127.0.0.1:8080/nodes/127.0.0.1:8553/cluster/members | grep -o '"status":"Up"' | wc -l | grep -qx 3; }
# Trunk builds again when it starts; until that build is applied the page it serves may
# not name the app yet, so wait for the page that loads the wasm.
page_loads_app() { curl -sf http://127.0.0.1:8080/ | grep -q '\.wasm'; }
wait_for "the page that loads the app on trunk's port" page_loads_app
say "page: ok"
wait_for "three Up members through trunk and the relay" members_up
say "relayed API (/nodes/127.0.0.1:8553/cluster/members): three Up members"
curl -sf http://127.0.0.1:8080/api/dashboard | grep -q '"launcher":"127.0.0.1:8550"'
say "first dashboard call (/api/dashboard): ok"
stream=$(timeout 5 curl -s -i -N -H "Connection: Upgrade" -H "Upgrade: websocket" \
  -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" \
  http://127.0.0.1:8080/nodes/127.0.0.1:8552/ws | head -c 400 | tr -d '\0' || true)
echo "$stream" | grep -q "101 Switching Protocols" || { say "no WebSocket upgrade through trunk" >&2; exit 1; }
echo "$stream" | grep -q '"type":"snapshot"' || { say "the relayed stream sent no snapshot" >&2; exit 1; }
say "relayed event stream (/nodes/127.0.0.1:8552/ws): 101 and a snapshot"
say "all passed"
