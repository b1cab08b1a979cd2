#!/usr/bin/env bash
# The journal's own cost: POST /order/ throughput and p99 of this build
# against the same build with the journal writes taken out
# (scripts/no-journal.patch) and against an older commit (the build
# before persistence), alternating runs of the same wrk load, then the
# median of each. Needs wrk, git and python3. Loopback only.
#
#   scripts/journal_alone.sh [old commit] [seconds per run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:-7afe9bd}
secs=${2:-6}
rounds=${3:-10}
source scripts/bench_lib.sh

cargo build --release --bin orderbook >/dev/null
build_at old "$old"
old_bin=$built
build_at nojournal HEAD scripts/no-journal.patch
nojournal_bin=$built

run() { # name binary args...
  wrk_once "$1" "$load" "$secs" "$2" "${@:3}"
  echo "$load $1 $rps $p99_us" | tee -a "$work/results"
}

for round in $(seq "$rounds"); do
  for load in post_noncross post_cross; do
    run before "$old_bin"
    run no-journal "$nojournal_bin" --snapshot-interval 0
    run journal "$PWD/target/release/orderbook" --snapshot-interval 0
  done
done
python3 - "$work/results" <<'PY'
import sys, statistics as st, collections
runs = collections.defaultdict(lambda: ([], []))
for line in open(sys.argv[1]):
    load, name, rps, p99 = line.split()
    runs[(load, name)][0].append(float(rps)); runs[(load, name)][1].append(float(p99))
for load in ("post_noncross", "post_cross"):
    base = {n: (st.median(runs[(load, n)][0]), st.median(runs[(load, n)][1])) for n in ("before", "no-journal", "journal")}
    for n, (rps, p99) in base.items():
        print(f"{load:14} {n:11} median {rps/1000:6.1f}k req/s  p99 {p99:5.0f} us")
    j, nj, b = base["journal"], base["no-journal"], base["before"]
    print(f"{load:14} journal / no-journal: {j[0]/nj[0]:.2f}x, p99 {j[1]-nj[1]:+.0f} us;"
          f" journal / before: {j[0]/b[0]:.2f}x, p99 {j[1]-b[1]:+.0f} us")
PY
