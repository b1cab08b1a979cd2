#!/usr/bin/env bash
# Side-by-side REST figure against a published peer: aodr3w/order-book-engine-rs
# (Rust, axum, REST + WebSocket; its orders live in memory only and its
# trades go to ParityDB in the background), pinned at the commit measured.
# Both take the same order stream (scripts/peer/*.lua, each in its own
# body format), wrk -t1 -c32, a fresh service each run, alternating; prints
# req/s, p50, p99, non-2xx and the service's CPU per request (/proc
# utime+stime over the run, all threads). Needs wrk, git and curl.
# Loopback only; the peer binds 0.0.0.0:PORT itself (hard-coded there).
#
#   scripts/vs_peer.sh [seconds per run] [rounds]
#
# PEER_SRC: where to clone the peer from (default its GitHub address);
# PEER_BIN: a peer binary already built (skips the clone and build).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
rounds=${2:-3}
peer_commit=69e3aa74eda715eaf042125307e1d9267c11b505
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release --bin orderbook >/dev/null
ours_bin="$PWD/target/release/orderbook"
peer_bin=${PEER_BIN:-}
if [ -z "$peer_bin" ]; then
  git clone -q "${PEER_SRC:-https://github.com/aodr3w/order-book-engine-rs}" "$work/peer"
  git -C "$work/peer" checkout -q "$peer_commit"
  (cd "$work/peer" && CARGO_TARGET_DIR="$work/peer-target" cargo build --release >/dev/null 2>&1)
  peer_bin="$work/peer-target/release/order_book_engine"
fi

port=18700
cpu_ticks() { awk '{sub(/^[0-9]+ \([^)]*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }

# run_once SIDE LOAD: one wrk run against a fresh service; prints a line.
run_once() {
  local side=$1 load=$2 dir="$work/data-$1-$2-$port" pid ready
  mkdir -p "$dir"
  port=$((port + 1))
  if [ "$side" = ours ]; then
    "$ours_bin" --listen "127.0.0.1:$port" --data-dir "$dir" 2>"$dir.log" &
    pid=$!; ready="http://127.0.0.1:$port/health"
  else
    # It keeps its trade store in the working directory and logs every
    # order at trace level to stdout, which goes nowhere here.
    (cd "$dir" && exec "$peer_bin" serve "$port" >/dev/null 2>"$dir.log") &
    pid=$!; ready="http://127.0.0.1:$port/book/BTC-USD"
  fi
  for _ in $(seq 100); do curl -sf -o /dev/null "$ready" && break; sleep 0.05; done
  local before after out requests
  before=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c32 -d"${secs}s" -s "scripts/peer/${side}_${load}.lua" "http://127.0.0.1:$port")
  after=$(cpu_ticks "$pid")
  if [ "$side" = ours ]; then kill -TERM "$pid"; else kill -INT "$pid"; fi
  wait "$pid" 2>/dev/null || true
  requests=$(grep -o 'requests=[0-9]*' <<<"$out" | cut -d= -f2)
  awk -v side="$side" -v load="$load" -v a="$before" -v b="$after" -v n="$requests" -v t="$(getconf CLK_TCK)" '
    /^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] } }
    END { printf "%-9s %-5s %10.0f req/s  p50 %6d us  p99 %7d us  non-2xx %d  CPU %.2f us/request\n",
          load, side, r["rps"], r["p50_us"], r["p99_us"], r["non2xx3xx"], (b - a) / t * 1e6 / n }' <<<"$out"
}

for load in noncross cross; do
  for round in $(seq "$rounds"); do
    for side in ours peer; do
      run_once "$side" "$load"
    done
  done
done
