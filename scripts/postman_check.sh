#!/usr/bin/env bash
# Runs the Postman collection (docs/postman/orderbook.postman_collection.json)
# with newman, Postman's command-line runner, against a fresh service on a
# free loopback port, in a throwaway data directory. Every request of the
# collection checks its answer; any failed check fails this script.
#
# Uses the binary `cargo test` builds (target/debug/orderbook, under
# CARGO_TARGET_DIR if set) unless ORDERBOOK_BIN names another; installs
# newman under target/newman with npm the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${ORDERBOOK_BIN:-${CARGO_TARGET_DIR:-target}/debug/orderbook}
NEWMAN=target/newman/node_modules/.bin/newman
if [ ! -x "$NEWMAN" ]; then
  npm install --prefix target/newman --no-audit --no-fund --silent newman@6.2.1 >/dev/null
fi
if [ ! -x "$BIN" ]; then
  cargo build --bin orderbook
fi

data=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

"$BIN" --listen 127.0.0.1:0 --data-dir "$data" 2>"$data/stderr" &
pid=$!
addr=""
for _ in $(seq 200); do
  addr=$(sed -n 's/^orderbook: listening on //p' "$data/stderr")
  [ -n "$addr" ] && break
  sleep 0.05
done
if [ -z "$addr" ]; then
  echo "the service did not start:" >&2
  cat "$data/stderr" >&2
  exit 1
fi

"$NEWMAN" run docs/postman/orderbook.postman_collection.json \
  --env-var "baseUrl=http://$addr" --color off
