#!/usr/bin/env bash
# Side-by-side HTTP figures: the service against nginx answering a fixed
# JSON body (the box's HTTP limit), alternating runs of the same wrk load.
# Needs wrk and nginx (apt-get install wrk nginx-light) and the shared
# bench scripts beside the checkout (../shared/bench). Loopback only.
#
#   scripts/http_vs_nginx.sh [seconds per run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-2}
bench=../shared/bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release --bin orderbook >/dev/null
nginx -p "$work" -c "$(realpath $bench/nginx-limit.conf)" 2>"$work/nginx.log" &

run_service() {
  # A fresh service per workload, state in a scratch directory.
  (cd "$work" && exec "$OLDPWD/target/release/orderbook" --listen 127.0.0.1:8000 2>"$work/service.log") &
  service_pid=$!
  sleep 1
}

for load in post_noncross post_cross; do
  run_service
  for round in $(seq "$rounds"); do
    for target in service:8000 nginx:8002; do
      name=${target%%:*}; port=${target##*:}
      out=$(wrk -t1 -c32 -d"${secs}s" --latency -s "$bench/$load.lua" "http://127.0.0.1:$port")
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
      p50=$(awk '$1=="50%" {print $2}' <<<"$out")
      p99=$(awk '$1=="99%" {print $2}' <<<"$out")
      errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
      printf '%-14s round %s %-8s %10s req/s  p50 %8s  p99 %8s  %s\n' "$load" "$round" "$name" "$rps" "$p50" "$p99" "$errors"
    done
  done
  kill "$service_pid" 2>/dev/null || true
  wait "$service_pid" 2>/dev/null || true
done
