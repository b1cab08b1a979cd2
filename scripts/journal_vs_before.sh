#!/usr/bin/env bash
# Side-by-side cost of the journal: POST throughput and latency of this
# build (journal alone, journal plus the periodic state file, journal
# with --fsync) against a build of the commit before persistence,
# alternating runs of the same wrk load.
# Needs wrk and git; builds the old commit in a scratch worktree.
# Loopback only.
#
#   scripts/journal_vs_before.sh <old commit> [seconds per run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?old commit}
secs=${2:-10}
rounds=${3:-2}
bench=../shared/bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; git worktree remove --force "$work/old" 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release --bin orderbook >/dev/null
git worktree add -q "$work/old" "$old"
(cd "$work/old" && CARGO_TARGET_DIR="$work/old-target" cargo build --release --bin orderbook >/dev/null 2>&1)
old_bin="$work/old-target/release/orderbook"

run() { # name binary args...
  local name=$1 bin=$2; shift 2
  local dir="$work/data-$name"; rm -rf "$dir"; mkdir -p "$dir"
  (cd "$dir" && exec "$bin" --listen 127.0.0.1:8000 "$@" 2>"$work/$name.log") &
  local pid=$!
  sleep 1
  out=$(wrk -t1 -c32 -d"${secs}s" --latency -s "$bench/$load.lua" "http://127.0.0.1:8000")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
  printf '%-14s round %s %-12s %10s req/s  p50 %8s  p99 %8s  %s\n' "$load" "$round" "$name" "$rps" "$p50" "$p99" "$errors"
}

for load in post_noncross post_cross; do
  for round in $(seq "$rounds"); do
    run before "$old_bin"
    # The journal alone, then with the state file written every 10 s (as
    # by default) and with --fsync.
    run journal "$PWD/target/release/orderbook" --snapshot-interval 0
    run journal+snap "$PWD/target/release/orderbook"
    run fsync "$PWD/target/release/orderbook" --fsync --snapshot-interval 0
  done
done
