#!/usr/bin/env bash
# Runs `parley loadtest` against a fresh `parley serve` on this machine
# (loopback only), as docs/performance.md reports it. Everything after the
# script's name goes to `parley loadtest`, e.g.:
#
#   scripts/loadtest-local.sh --rooms 1 --publishers 10 --subscribers 50 --video none --duration 30s
#
# PARLEY_SERVE_ARGS adds flags to the server, e.g. PARLEY_SERVE_ARGS='--cpu-profile server.prof'.
#
# The server runs as its own process, so the CPU and memory the report
# reads from its /metrics are the server's alone.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${PARLEY_NO_BUILD:-}" ] || go build -o bin/parley ./cmd/parley
data=$(mktemp -d)
port=${PARLEY_LOADTEST_PORT:-18080}
base="http://127.0.0.1:$port"
bin/parley serve --addr "127.0.0.1:$port" --data-dir "$data" --rtc-udp-port 0 --rtc-tcp-port -1 \
  --rtc-listen-ip 127.0.0.1 --rtc-loopback-only --max-connections-per-user 100000 --log-level warn ${PARLEY_SERVE_ARGS:-} &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done

jar="$data/cookies"
curl -fs -o /dev/null -c "$jar" -X POST "$base/signup" \
  --data-urlencode username=loader --data-urlencode display_name="Load Tester" \
  --data-urlencode email=loader@example.org --data-urlencode password="load test password 1"
token=$(curl -fs -b "$jar" -X POST "$base/account/tokens" --data-urlencode name=loadtest |
  sed -n 's/.*<code id="new-token" class="token">\(parley_[A-Za-z0-9_-]*\)<\/code>.*/\1/p')
[ -n "$token" ] || { echo "could not make a token" >&2; exit 1; }
bin/parley loadtest --url "$base" --token "$token" --loopback "$@"
