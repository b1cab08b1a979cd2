#!/usr/bin/env bash
# Side-by-side REST throughput and latency of this build against a build
# of another commit (the last session's, say), on the same wrk loads in
# alternating runs, a fresh service each: to show a change costs nothing
# on the order path, or what it costs.
# Needs wrk and git; builds the old commit in a scratch worktree.
# Loopback only.
#
#   scripts/vs_commit.sh <old commit> [seconds per run] [rounds] [loads]
#
# loads: names of ../shared/bench/*.lua, by default
# "post_noncross post_cross".
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?old commit}
secs=${2:-8}
rounds=${3:-3}
loads=${4:-post_noncross post_cross}
source scripts/bench_lib.sh

cargo build --release --bin orderbook >/dev/null
build_at old "$old"
old_bin=$built

for load in $loads; do
  for round in $(seq "$rounds"); do
    for side in old new; do
      bin=$old_bin
      [ "$side" = new ] && bin="$PWD/target/release/orderbook"
      wrk_once "$side" "$load" "$secs" "$bin"
      printf '%-14s round %s %-4s %10s req/s  p50 %8s  p99 %8s  %s\n' "$load" "$round" "$side" "$rps" "$p50" "$p99" "$errors"
    done
  done
done
