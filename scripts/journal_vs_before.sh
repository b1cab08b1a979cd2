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
source scripts/bench_lib.sh

cargo build --release --bin orderbook >/dev/null
build_at old "$old"
old_bin=$built

run() { # name binary args...
  wrk_once "$1" "$load" "$secs" "$2" "${@:3}"
  printf '%-14s round %s %-12s %10s req/s  p50 %8s  p99 %8s  %s\n' "$load" "$round" "$1" "$rps" "$p50" "$p99" "$errors"
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
