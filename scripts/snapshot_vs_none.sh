#!/usr/bin/env bash
# Matching latency while 1M-order state files are written, against none:
# the same crossing load (examples/feed_latency, inside the spread of a
# 1M-order book) on a service started from the same 1M-order state file,
# once with --snapshot-interval 0 and once with 2 (a state file of the
# whole book every 2 s, back to back). Reads the service's own
# orderbook_matching_latency_seconds from GET /metrics. Loopback only.
#
#   scripts/snapshot_vs_none.sh [seconds] [pairs/s]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
rate=${2:-2000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release --bin orderbook --example feed_latency --example persist_figures >/dev/null
target/release/examples/persist_figures 1000000 2 "$work/book"
for interval in 0 2; do
  dir="$work/run-$interval"; mkdir -p "$dir"; cp "$work/book/order_book_state.json" "$dir/"
  (cd "$dir" && exec "$OLDPWD/target/release/orderbook" --listen 127.0.0.1:8020 --snapshot-interval "$interval" 2>"$work/log-$interval") &
  pid=$!
  until grep -q "listening" "$work/log-$interval" 2>/dev/null; do sleep 0.2; done
  echo "--- --snapshot-interval $interval"
  target/release/examples/feed_latency 127.0.0.1:8020 "$rate" "$secs" 1 1000.0 | sed -n 2p
  curl -s 127.0.0.1:8020/metrics | grep -E '^orderbook_(matching_latency_seconds|command_latency_seconds)\{|^orderbook_snapshots_total|^orderbook_last_snapshot_milliseconds'
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
