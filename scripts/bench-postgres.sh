#!/usr/bin/env bash
# Runs `herald bench` against N Herald nodes sharing one PostgreSQL database.
#
#   scripts/bench-postgres.sh NODES [herald bench options...]
#   e.g. scripts/bench-postgres.sh 2 --messages 50000 --concurrency 64
#
# Builds nothing: uses $HERALD_BIN (default target/release/herald). Needs PostgreSQL at
# $HERALD_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres) and psql.
# Each run gets a fresh schema, dropped at the end. The bench posts through the first node's
# API; every node delivers. Everything listens on loopback only.
set -euo pipefail
nodes=${1:?usage: $0 NODES [bench options]}
shift
bin=${HERALD_BIN:-target/release/herald}
base=${HERALD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
schema="herald_bench_$$"
token="sk_bench_$(date +%s%N)_token"
work=$(mktemp -d)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$base" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql "$base" -qc "CREATE SCHEMA $schema"
separator='?'
[[ "$base" == *\?* ]] && separator='&'
url="${base}${separator}options=-c%20search_path%3D${schema}"
key=$("$bin" key generate)

first_port=""
for i in $(seq 1 "$nodes"); do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  [ -z "$first_port" ] && first_port=$port
  mkdir -p "$work/node$i"
  HERALD_DATABASE_URL="$url" HERALD_ENCRYPTION_KEY="$key" HERALD_ADMIN_TOKEN="$token" \
    HERALD_ALLOWED_CIDRS=127.0.0.0/8 HERALD_LOG_LEVEL=warn \
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/node$i" >"$work/node$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/api/v1/health" && break
    sleep 0.1
  done
done

echo "herald bench on PostgreSQL, $nodes node(s), posting through 127.0.0.1:$first_port" >&2
"$bin" bench --url "http://127.0.0.1:$first_port" --token "$token" "$@"
