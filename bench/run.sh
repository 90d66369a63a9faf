#!/usr/bin/env bash
# Benchmarks on loopback, figures side by side from the same run (the machine is noisy):
#   1. GET /health/live vs GET /catalog/products/{id} (cached) vs GET /identity/me (token check)
#   2. logins/s with the server on one core (argon2id-bound by design)
#   3. complete checkouts (POST -> confirmed) with 16 concurrent customers, SQLite and PostgreSQL
# Needs wrk (apt-get install wrk). Usage: bench/run.sh [sqlite|postgres|all]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/emporium-target}"
which wrk >/dev/null || { echo "bench: wrk is required (apt-get install wrk)"; exit 1; }
cargo build --release -q -p emporium --bin emporium
cargo build --release -q -p emporium-bench
BIN=$CARGO_TARGET_DIR/release
PORT=18080
export BENCH_URL=http://127.0.0.1:$PORT BENCH_ADMIN_EMAIL=bench-admin@example.com BENCH_ADMIN_PASSWORD=load-test-violet-77
mode=${1:-all}
out=bench/out; mkdir -p $out

start() { # backend, [taskset cpu list]
  local data; data=$(mktemp -d)
  local url=""
  if [ "$1" = postgres ]; then
    local db="emporium_bench_$$_$RANDOM"
    psql "${EMPORIUM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}" -qc "create database $db" >/dev/null
    url="postgres://postgres@127.0.0.1:5432/$db"
  fi
  local pin=()
  [ -n "${2:-}" ] && pin=(taskset -c "$2")
  EMPORIUM_DATA_DIR=$data EMPORIUM_LISTEN=127.0.0.1:$PORT EMPORIUM_RATE_LIMIT=off RUST_LOG=warn \
    EMPORIUM_DATABASE_URL=$url EMPORIUM_BOOTSTRAP_ADMIN_EMAIL=$BENCH_ADMIN_EMAIL EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD=$BENCH_ADMIN_PASSWORD \
    "${pin[@]}" "$BIN/emporium" serve > "$out/server-$1.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -fs "$BENCH_URL/health/ready" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench: server did not start"; cat "$out/server-$1.log"; exit 1
}
stop() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }

rps() { wrk -t2 -c64 -d10s "$@" | awk '/Requests\/sec/ {print $2}'; }

if [ "$mode" = all ] || [ "$mode" = sqlite ]; then
  start sqlite
  eval "$("$BIN/emporium-bench" setup)"
  curl -fs "$BENCH_URL/api/v1/catalog/products/$PRODUCT_ID" >/dev/null
  live=$(rps "$BENCH_URL/health/live")
  product=$(rps "$BENCH_URL/api/v1/catalog/products/$PRODUCT_ID")
  me=$(rps -H "Authorization: Bearer $CUSTOMER_TOKEN" "$BENCH_URL/api/v1/identity/me")
  echo "reads (wrk, 64 connections, 10 s each, same run):"
  echo "  /health/live                 $live req/s"
  awk -v a="$product" -v b="$live" 'BEGIN { printf "  GET /catalog/products/{id}   %s req/s  = %.0f%% of live\n", a, 100*a/b }'
  awk -v a="$me" -v b="$live" 'BEGIN { printf "  GET /identity/me             %s req/s  = %.0f%% of live\n", a, 100*a/b }'
  BENCH_SECONDS=${BENCH_SECONDS:-20} "$BIN/emporium-bench" checkout | sed 's/^/sqlite /'
  stop
  start sqlite 0
  BENCH_SECONDS=10 BENCH_CONCURRENCY=2 "$BIN/emporium-bench" logins | sed 's/^/one core: /'
  stop
fi
if [ "$mode" = all ] || [ "$mode" = postgres ]; then
  start postgres
  eval "$("$BIN/emporium-bench" setup)"
  BENCH_SECONDS=${BENCH_SECONDS:-20} "$BIN/emporium-bench" checkout | sed 's/^/postgres /'
  stop
fi
