# Sourced by the journal bench scripts (from the checkout's root): a
# scratch directory removed on exit with the worktrees made in it, builds
# of other commits, and one wrk run against a fresh service.
# Loopback only.

bench=../shared/bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; for w in "$work"/tree-*; do git worktree remove --force "$w" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# build_at NAME REV [PATCH]: builds the binary at REV in a scratch
# worktree, with PATCH (a file in the checkout) applied; sets `built` to
# the binary's path.
build_at() {
  local name=$1 rev=$2 patch=${3:-}
  git worktree add -q "$work/tree-$name" "$rev"
  if [ -n "$patch" ]; then (cd "$work/tree-$name" && git apply "$OLDPWD/$patch"); fi
  (cd "$work/tree-$name" && CARGO_TARGET_DIR="$work/target-$name" cargo build --release --bin orderbook >/dev/null 2>&1)
  built="$work/target-$name/release/orderbook"
}

# wrk_once NAME LOAD SECS BIN ARGS...: starts BIN on a fresh data
# directory, waits until it answers, runs wrk -t1 -c32 with the shared
# LOAD script for SECS, stops it; sets rps, p50, p99 (as wrk prints them),
# p99_us and errors.
wrk_once() {
  local name=$1 load=$2 secs=$3 bin=$4; shift 4
  local dir="$work/data-$name"; rm -rf "$dir"; mkdir -p "$dir"
  (cd "$dir" && exec "$bin" --listen 127.0.0.1:8000 "$@" 2>"$work/$name.log") &
  local pid=$!
  for _ in $(seq 50); do curl -s 127.0.0.1:8000/health >/dev/null && break; sleep 0.1; done
  local out
  out=$(wrk -t1 -c32 -d"${secs}s" --latency -s "$bench/$load.lua" "http://127.0.0.1:8000")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  p99_us=$(awk '{v=$1; if (v ~ /ms$/) {sub(/ms/,"",v); v*=1000} else sub(/us/,"",v); print v}' <<<"$p99")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
}
