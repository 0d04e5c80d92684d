#!/usr/bin/env bash
# Property-based run of the committed OpenAPI document (openapi.json) against a real
# `herald serve`: schemathesis generates requests for every operation from the document and
# fails on any 5xx, any status code the document does not list for the operation, and any
# response whose body, content type or headers do not match it.
#
#   .ci/schemathesis.sh [sqlite|postgres ...]     (default: sqlite, and postgres when reachable)
#
# Each backend gets SCHEMATHESIS_SECONDS (default 75) of generated requests. PostgreSQL runs on
# a scratch database (created here, dropped afterwards) at HERALD_TEST_POSTGRES_URL's server
# (default postgres://postgres@127.0.0.1:5432/postgres). Needs `st` (schemathesis, the version
# pinned in .ci/run) on PATH, or SCHEMATHESIS=/path/to/st.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

seconds="${SCHEMATHESIS_SECONDS:-75}"
st="${SCHEMATHESIS:-st}"
postgres_url="${HERALD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
backends=("$@")
if [ "${#backends[@]}" -eq 0 ]; then
  backends=(sqlite)
  if psql "$postgres_url" -qtAc 'SELECT 1' >/dev/null 2>&1; then
    backends+=(postgres)
  elif [ "${HERALD_REQUIRE_POSTGRES:-}" = 1 ]; then
    echo "PostgreSQL is required (HERALD_REQUIRE_POSTGRES=1) but not reachable at $postgres_url" >&2
    exit 1
  else
    echo "PostgreSQL is not reachable: the PostgreSQL run is SKIPPED"
  fi
fi

cargo build -q -p herald --bin herald --locked
herald="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/herald"

scratch="$(mktemp -d)"
server=""
database=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if [ -n "$database" ]; then
    psql "$postgres_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

# A free loopback port: bound by the kernel, released, then given to Herald.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run_backend() {
  local backend="$1" database_url="" port token
  case "$backend" in
    sqlite) ;;
    postgres)
      database="herald_schemathesis_$$"
      psql "$postgres_url" -qc "CREATE DATABASE $database" >/dev/null
      database_url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$postgres_url" "$database")"
      ;;
    *) echo "unknown backend $backend (sqlite or postgres)" >&2; exit 2 ;;
  esac
  port="$(free_port)"
  token="sk_schemathesis_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  mkdir -p "$scratch/$backend"
  HERALD_LISTEN="127.0.0.1:$port" \
  HERALD_DATA_DIR="$scratch/$backend/data" \
  HERALD_DATABASE_URL="$database_url" \
  HERALD_ENCRYPTION_KEY="bXktdGVzdC1rZXktaXMtdGhpcnR5LXR3by1ieXRlcyE=" \
  HERALD_ADMIN_TOKEN="$token" \
  HERALD_LOG_LEVEL="${SCHEMATHESIS_LOG_LEVEL:-warn}" \
    "$herald" serve >"$scratch/$backend/herald.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null

  echo "== schemathesis on $backend: ${seconds}s against http://127.0.0.1:$port"
  local status=0 report="${SCHEMATHESIS_REPORT_DIR:-$scratch/report}/$backend"
  local checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
  local common=(--url "http://127.0.0.1:$port" --header "Authorization: Bearer $token" --checks "$checks"
    --workers 1 --request-timeout 10 --suppress-health-check all --generation-database none --no-color)
  # Revoking a token is run last and alone: the stateful phase finds the run's own token in
  # GET /api/v1/token and revokes it, after which every other operation would only see 401.
  # Run from the scratch directory: schemathesis and hypothesis leave caches in the current one.
  cd "$scratch"
  "$st" run "$repo/openapi.json" "${common[@]}" --max-time "$seconds" \
    --exclude-path "/api/v1/token/{token_id}" \
    --report junit --report-dir "$report/api" || status=$?
  "$st" run "$repo/openapi.json" "${common[@]}" --max-time 5 --phases examples,coverage,fuzzing \
    --include-path "/api/v1/token/{token_id}" \
    --report junit --report-dir "$report/revoke" || status=$?
  cd "$repo"

  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
  if grep -q "panicked" "$scratch/$backend/herald.log"; then
    echo "herald panicked on $backend:" >&2
    grep -n -A 5 "panicked" "$scratch/$backend/herald.log" >&2
    status=1
  fi
  if [ "$status" -ne 0 ]; then
    echo "--- herald's log ($backend), last 40 lines" >&2
    tail -n 40 "$scratch/$backend/herald.log" >&2
    return "$status"
  fi
  if [ -n "$database" ]; then
    psql "$postgres_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null
    database=""
  fi
}

for backend in "${backends[@]}"; do
  run_backend "$backend"
done
