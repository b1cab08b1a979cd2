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
bench=../shared/bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; git worktree remove --force "$work/old" 2>/dev/null || true; git worktree remove --force "$work/nojournal" 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release --bin orderbook >/dev/null
git worktree add -q "$work/old" "$old"
git worktree add -q "$work/nojournal" HEAD
(cd "$work/nojournal" && git apply "$OLDPWD/scripts/no-journal.patch")
for tree in old nojournal; do
  (cd "$work/$tree" && CARGO_TARGET_DIR="$work/$tree-target" cargo build --release --bin orderbook >/dev/null 2>&1)
done

run() { # name binary args...
  local name=$1 bin=$2; shift 2
  local dir="$work/data-$name"; rm -rf "$dir"; mkdir -p "$dir"
  (cd "$dir" && exec "$bin" --listen 127.0.0.1:8000 "$@" 2>"$work/$name.log") &
  local pid=$!
  for _ in $(seq 50); do curl -s 127.0.0.1:8000/health >/dev/null && break; sleep 0.1; done
  out=$(wrk -t1 -c32 -d"${secs}s" --latency -s "$bench/$load.lua" "http://127.0.0.1:8000")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /ms$/) {sub(/ms/,"",v); v*=1000} else sub(/us/,"",v); print v}' <<<"$out")
  echo "$load $name $rps $p99" | tee -a "$work/results"
}

for round in $(seq "$rounds"); do
  for load in post_noncross post_cross; do
    run before "$work/old-target/release/orderbook"
    run no-journal "$work/nojournal-target/release/orderbook" --snapshot-interval 0
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
