#!/usr/bin/env bash
# Benchmarks on loopback, figures side by side from the same run (the machine is noisy):
#   1. GET /health/live vs GET /catalog/products/{id} (cached) vs GET /identity/me (token check)
#   2. logins/s with the server on one core (argon2id-bound by design)
#   3. complete checkouts (POST -> confirmed) with 16 concurrent customers, SQLite and PostgreSQL
#   4. split: the same checkouts through the gateway with four context processes on RabbitMQ,
#      beside the PostgreSQL monolith; and a cached product read direct, through nginx (the
#      same hop, keep-alive to the upstream) and through the gateway, in one run
#   5. flood: 400 sign-ups at once, /health/live probed meanwhile, resident memory before/after
# Resident memory (VmRSS, and the peak VmHWM) is reported after start, after 50 log-ins and
# after the reads. Needs wrk (apt-get install wrk). Usage: bench/run.sh [sqlite|postgres|split|proxy|flood|all]
#   (proxy: only the read through nginx and the gateway, against a SQLite monolith; with
#   GATEWAY_BIN=another/build/emporium the gateway is that build, to compare two;
#   PROXY_ROUNDS=N: nginx and the gateway take N alternating turns, medians reported)
#   bench/run.sh compare OTHER_BINARY [ROUNDS]: PostgreSQL checkouts with another build of the
#   server (e.g. the previous release) and this one, alternating, ROUNDS (3) each; the medians
#   and their ratio. Alternating keeps the machine's drift out of the ratio.
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
    "${pin[@]}" "${SERVER_BIN:-$BIN/emporium}" serve > "$out/server-$1.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -fs "$BENCH_URL/health/ready" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench: server did not start"; cat "$out/server-$1.log"; exit 1
}
stop() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; }
rss() { # label: the server's resident memory now and at its peak, in MiB
  awk -v label="$1" '/^VmRSS/ { now = $2 } /^VmHWM/ { peak = $2 } END { printf "  resident %-28s %5.0f MiB (peak %.0f MiB)\n", label, now / 1024, peak / 1024 }' "/proc/$SERVER/status"
}

# The split topology: each context its own process and PostgreSQL database, RabbitMQ between
# them, the gateway on $PORT. Context ports: identity 18081, catalog 18082, ordering 18083,
# shipping 18084.
SPLIT_PIDS=()
start_split() {
  local data; data=$(mktemp -d)
  local pg=${EMPORIUM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
  local ns="bench$$$RANDOM" port=18081 upstreams=""
  for ctx in identity catalog ordering shipping; do
    local db="emporium_bench_${ctx}_$$_$RANDOM"
    psql "$pg" -qc "create database $db" >/dev/null
    local upper; upper=$(echo "$ctx" | tr a-z A-Z)
    env EMPORIUM_CONTEXTS=$ctx "EMPORIUM_${upper}_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db" \
      EMPORIUM_DATA_DIR="$data/$ctx" EMPORIUM_LISTEN=127.0.0.1:$port EMPORIUM_RATE_LIMIT=off RUST_LOG=warn \
      EMPORIUM_BUS=rabbitmq EMPORIUM_AMQP_URL="${EMPORIUM_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}" \
      EMPORIUM_AMQP_NAMESPACE=$ns EMPORIUM_AMQP_QUEUE_EXPIRES_SECS=300 EMPORIUM_TRUSTED_PROXIES=127.0.0.1 \
      EMPORIUM_JWKS_URL=http://127.0.0.1:18081/.well-known/jwks.json \
      EMPORIUM_BOOTSTRAP_ADMIN_EMAIL=$BENCH_ADMIN_EMAIL EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD=$BENCH_ADMIN_PASSWORD \
      "$BIN/emporium" serve > "$out/split-$ctx.log" 2>&1 &
    SPLIT_PIDS+=($!)
    upstreams="$upstreams${upstreams:+,}$ctx=http://127.0.0.1:$port"
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done
    port=$((port + 1))
  done
  EMPORIUM_GATEWAY_UPSTREAMS=$upstreams EMPORIUM_LISTEN=127.0.0.1:$PORT EMPORIUM_RATE_LIMIT=off RUST_LOG=warn \
    "$BIN/emporium" gateway > "$out/split-gateway.log" 2>&1 &
  SPLIT_PIDS+=($!)
  for _ in $(seq 1 100); do curl -fs "$BENCH_URL/health/ready" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench: the split topology did not start"; tail -n 20 "$out"/split-*.log; exit 1
}
stop_split() { for p in "${SPLIT_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done; SPLIT_PIDS=(); }

# nginx proxying the same hop as the gateway (catalog on 18082), on 18090: one worker per core,
# HTTP/1.1 keep-alive to the upstream, no access log (the gateway writes none either).
NGINX_PORT=18090
start_nginx() {
  command -v nginx >/dev/null || { echo "bench: nginx is required (apt-get install nginx)"; exit 1; }
  NGINX_DIR=$(mktemp -d)
  mkdir -p "$NGINX_DIR/logs"
  cat > "$NGINX_DIR/nginx.conf" <<CONF
worker_processes auto;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream catalog { server 127.0.0.1:18082; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://catalog;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
  nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -g 'daemon off;' > "$out/nginx.log" 2>&1 &
  NGINX_PID=$!
  for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$NGINX_PORT/health/live" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench: nginx did not start"; cat "$out/nginx.log" "$NGINX_DIR/logs/error.log"; exit 1
}
stop_nginx() { kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null || true; rm -rf "$NGINX_DIR"; }

# A cached product read from catalog (18082) directly, through nginx and through the gateway
# ($PORT, the last of SPLIT_PIDS), in one run.
proxy_reads() {
  curl -fs "$BENCH_URL/api/v1/catalog/products/$PRODUCT_ID" >/dev/null
  start_nginx
  local path="/api/v1/catalog/products/$PRODUCT_ID" rounds=${PROXY_ROUNDS:-1} gateway_pid=${SPLIT_PIDS[-1]}
  local nginx_pids; nginx_pids="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
  direct=$(rps "http://127.0.0.1:18082$path")
  # nginx and the gateway take turns (PROXY_ROUNDS each, 1 by default), so that the machine's
  # drift falls on both; each figure is the median of its rounds. CPU per request is user +
  # system time (clock ticks of 10 ms) over the process's requests.
  local nginx_rps=() gateway_rps=() nginx_cpus=() gateway_cpus=() r before after
  for _ in $(seq 1 "$rounds"); do
    before=$(cpu_ticks $nginx_pids); r=$(rps "http://127.0.0.1:$NGINX_PORT$path"); after=$(cpu_ticks $nginx_pids)
    nginx_rps+=("$r"); nginx_cpus+=("$(awk -v t="$((after - before))" -v r="$r" 'BEGIN { printf "%.1f", t * 10000 / (r * 10) }')")
    before=$(cpu_ticks "$gateway_pid"); r=$(rps "$BENCH_URL$path"); after=$(cpu_ticks "$gateway_pid")
    gateway_rps+=("$r"); gateway_cpus+=("$(awk -v t="$((after - before))" -v r="$r" 'BEGIN { printf "%.1f", t * 10000 / (r * 10) }')")
  done
  stop_nginx
  nginx=$(median_of "${nginx_rps[@]}"); gateway=$(median_of "${gateway_rps[@]}")
  nginx_cpu=$(median_of "${nginx_cpus[@]}"); gateway_cpu=$(median_of "${gateway_cpus[@]}")
  gateway_rss=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$gateway_pid/status")
  echo "split reads (wrk, 64 connections, 10 s each, same run; nginx and gateway medians of $rounds alternating rounds):"
  echo "  catalog process directly     $direct req/s"
  awk -v a="$nginx" -v b="$direct" -v c="$nginx_cpu" 'BEGIN { printf "  through nginx                %s req/s  = %.0f%% of direct (%s us of nginx CPU per request)\n", a, 100*a/b, c }'
  awk -v a="$gateway" -v b="$direct" -v n="$nginx" -v m="$gateway_rss" -v c="$gateway_cpu" 'BEGIN { printf "  through the gateway          %s req/s  = %.0f%% of direct, %.2fx nginx (gateway resident %s MiB, %s us of gateway CPU per request)\n", a, 100*a/b, a/n, m, c }'
  [ "$rounds" -gt 1 ] && echo "  rounds: nginx ${nginx_rps[*]}; gateway ${gateway_rps[*]}"
  return 0
}
# The median of the numbers given.
median_of() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# CPU clock ticks (user + system, 10 ms each) the processes have used so far.
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$t"; }
rps() { wrk -t2 -c64 -d10s "$@" | awk '/Requests\/sec/ {print $2}'; }

if [ "$mode" = compare ]; then
  other=${2:?usage: bench/run.sh compare OTHER_BINARY [ROUNDS]}
  rounds=${3:-3}
  : > "$out/compare.txt"
  for _ in $(seq 1 "$rounds"); do
    for build in other this; do
      if [ $build = other ]; then SERVER_BIN=$other; else SERVER_BIN=$BIN/emporium; fi
      start postgres
      eval "$("$BIN/emporium-bench" setup)"
      BENCH_SECONDS=${BENCH_SECONDS:-20} "$BIN/emporium-bench" checkout | sed "s/^/$build /" | tee -a "$out/compare.txt"
      stop
    done
  done
  unset SERVER_BIN
  median() { grep "^$1 " "$out/compare.txt" | grep -o '[0-9.]* orders/s' | cut -d' ' -f1 | sort -n \
    | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
  a=$(median other); b=$(median this)
  awk -v a="$a" -v b="$b" 'BEGIN { printf "median orders/s: other %s, this %s = %.2fx\n", a, b, b / a }'
  exit 0
fi
if [ "$mode" = all ] || [ "$mode" = sqlite ]; then
  start sqlite
  echo "memory (sqlite monolith, release build):"
  rss "after start"
  eval "$("$BIN/emporium-bench" setup)"
  for _ in $(seq 1 50); do
    curl -fs "$BENCH_URL/api/v1/identity/tokens" -H 'content-type: application/json' \
      -d "{\"email\":\"$BENCH_ADMIN_EMAIL\",\"password\":\"$BENCH_ADMIN_PASSWORD\"}" >/dev/null
  done
  rss "after 50 log-ins"
  curl -fs "$BENCH_URL/api/v1/catalog/products/$PRODUCT_ID" >/dev/null
  live=$(rps "$BENCH_URL/health/live")
  product=$(rps "$BENCH_URL/api/v1/catalog/products/$PRODUCT_ID")
  me=$(rps -H "Authorization: Bearer $CUSTOMER_TOKEN" "$BENCH_URL/api/v1/identity/me")
  echo "reads (wrk, 64 connections, 10 s each, same run):"
  echo "  /health/live                 $live req/s"
  awk -v a="$product" -v b="$live" 'BEGIN { printf "  GET /catalog/products/{id}   %s req/s  = %.0f%% of live\n", a, 100*a/b }'
  awk -v a="$me" -v b="$live" 'BEGIN { printf "  GET /identity/me             %s req/s  = %.0f%% of live\n", a, 100*a/b }'
  rss "after the reads"
  BENCH_SECONDS=${BENCH_SECONDS:-20} "$BIN/emporium-bench" checkout | sed 's/^/sqlite /'
  stop
  start sqlite 0
  BENCH_SECONDS=10 BENCH_CONCURRENCY=2 "$BIN/emporium-bench" logins | sed 's/^/one core: /'
  stop
fi
if [ "$mode" = all ] || [ "$mode" = postgres ] || [ "$mode" = split ]; then
  start postgres
  eval "$("$BIN/emporium-bench" setup)"
  BENCH_SECONDS=${BENCH_SECONDS:-20} "$BIN/emporium-bench" checkout | sed 's/^/postgres /'
  stop
fi
if [ "$mode" = all ] || [ "$mode" = split ]; then
  start_split
  eval "$("$BIN/emporium-bench" setup)"
  proxy_reads
  BENCH_SECONDS=${BENCH_SECONDS:-20} "$BIN/emporium-bench" checkout | sed 's/^/split (4 processes, RabbitMQ, gateway) /'
  stop_split
fi
if [ "$mode" = proxy ]; then
  # The gateway's own cost, without RabbitMQ or checkouts: one SQLite monolith on 18082 as
  # every context's upstream, the gateway on $PORT, nginx on $NGINX_PORT.
  data=$(mktemp -d)
  EMPORIUM_DATA_DIR=$data EMPORIUM_LISTEN=127.0.0.1:18082 EMPORIUM_RATE_LIMIT=off RUST_LOG=warn \
    EMPORIUM_BOOTSTRAP_ADMIN_EMAIL=$BENCH_ADMIN_EMAIL EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD=$BENCH_ADMIN_PASSWORD \
    "$BIN/emporium" serve > "$out/proxy-upstream.log" 2>&1 &
  SPLIT_PIDS+=($!)
  for _ in $(seq 1 100); do curl -fs http://127.0.0.1:18082/health/ready >/dev/null 2>&1 && break; sleep 0.1; done
  upstreams=""
  for ctx in identity catalog ordering shipping notifications; do upstreams="$upstreams${upstreams:+,}$ctx=http://127.0.0.1:18082"; done
  EMPORIUM_GATEWAY_UPSTREAMS=$upstreams EMPORIUM_LISTEN=127.0.0.1:$PORT EMPORIUM_RATE_LIMIT=off RUST_LOG=warn \
    "${GATEWAY_BIN:-$BIN/emporium}" gateway > "$out/proxy-gateway.log" 2>&1 &
  SPLIT_PIDS+=($!)
  for _ in $(seq 1 100); do curl -fs "$BENCH_URL/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done
  eval "$("$BIN/emporium-bench" setup)"
  proxy_reads
  stop_split
fi
if [ "$mode" = all ] || [ "$mode" = flood ]; then
  start sqlite
  rss "before the flood"
  "$BIN/emporium-bench" flood
  rss "after the flood"
  stop
fi
