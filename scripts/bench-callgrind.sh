#!/usr/bin/env bash
# Counts the instructions Herald executes per event under `herald bench` load, with callgrind:
# a figure that stays put on a busy machine, where throughput moves by a third from one minute
# to the next.
#
#   scripts/bench-callgrind.sh EVENTS [herald bench options...]
#   e.g. scripts/bench-callgrind.sh 2000 --ingest
#
# Builds nothing: uses $HERALD_BIN (default target/release/herald). Starts `herald serve` on
# SQLite under valgrind (loopback, a fresh data directory), sends 200 events to warm it up,
# zeroes the counters, runs `herald bench --url … EVENTS` (16 senders) until every event is
# delivered, dumps the counters and prints the total and the total per event. Everything Herald
# does for those events counts (intake, forwarding, attempt records, its own background work);
# the bench's own work does not. The callgrind file is kept in $HERALD_CALLGRIND_DIR (default
# the current directory) for `callgrind_annotate --inclusive=yes`.
set -euo pipefail
events=${1:?usage: $0 EVENTS [bench options]}
shift
bin=${HERALD_BIN:-target/release/herald}
out_dir=${HERALD_CALLGRIND_DIR:-.}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="sk_callgrind_$(date +%s%N)_token"
out="$out_dir/callgrind.herald.$$"
pid=""

cleanup() {
  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

env -i PATH="$PATH" HOME="$HOME" HERALD_LISTEN="127.0.0.1:$port" HERALD_DATA_DIR="$work/data" \
  HERALD_ADMIN_TOKEN="$token" HERALD_ALLOWED_CIDRS=127.0.0.0/8 HERALD_LOG_LEVEL=warn \
  HERALD_MAX_CONCURRENT_REQUESTS=256 HERALD_MAX_CONNECTIONS=1024 \
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" serve >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break
  sleep 0.5
done
"$bin" bench --url "http://127.0.0.1:$port" --token "$token" --messages 200 --concurrency 16 "$@" >/dev/null
callgrind_control -z "$pid" >/dev/null 2>&1
"$bin" bench --url "http://127.0.0.1:$port" --token "$token" --messages "$events" --concurrency 16 \
  --timeout 600s --json "$@" >"$work/bench.json"
callgrind_control -d "$pid" >/dev/null 2>&1
dump=$(ls -t "$out".* | head -1)
total=$(grep -E '^(summary|totals):' "$dump" | head -1 | awk '{print $2}')
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print("accepted", d["accepted"], "delivered", d["deliveries"], "missing", d["missing"])' "$work/bench.json"
echo "instructions $total, per event $((total / events)) ($dump)"
