#!/usr/bin/env bash
# Checks the Docker packaging end to end, as a user of the original service
# would use it: `docker compose up --build` serves the API on port 8000 and
# Docker reports it healthy (the image's HEALTHCHECK), a
# stop (SIGTERM) exits 0, and the book survives a stop, a restart and a
# SIGKILL, kept in the compose volume. Not part of CI (it needs a Docker
# daemon and the base images); run it from the checkout's root:
#
#   bash scripts/docker_smoke.sh
#
# It takes the compose project name `orderbook-smoke`, so it leaves any
# other run of the compose file alone, and removes its container and volume
# on exit. Loopback only: it talks to 127.0.0.1:8000.
set -euo pipefail

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  compose=(docker-compose)
fi
compose+=(--project-name orderbook-smoke)
base=http://127.0.0.1:8000
trap '"${compose[@]}" down -v >/dev/null 2>&1 || true' EXIT

fail() { echo "docker_smoke: FAIL: $*" >&2; exit 1; }
# expect WHAT GOT WANTED
expect() { [ "$2" = "$3" ] || fail "$1: got $2, expected $3"; }
wait_healthy() {
  for _ in $(seq 100); do
    [ "$(curl -s "$base/health" || true)" = '{"status":"ok","symbol":"DEFAULT"}' ] && return 0
    sleep 0.1
  done
  fail "no answer on $base/health"
}
field() { python3 -c "import sys, json; print(json.load(sys.stdin)['$1'])"; }
exit_code() { docker inspect --format '{{.State.ExitCode}}' "$("${compose[@]}" ps -q orderbook)"; }
# Docker's own verdict from the image's HEALTHCHECK (first run 10 s in).
wait_docker_healthy() {
  for _ in $(seq 60); do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$("${compose[@]}" ps -q orderbook)")
    [ "$status" = healthy ] && return 0
    sleep 1
  done
  fail "Docker's health status is $status, not healthy"
}

"${compose[@]}" down -v >/dev/null 2>&1 || true
"${compose[@]}" up --build -d
wait_healthy
wait_docker_healthy

maker=$(curl -s -X POST "$base/order/" -H 'Content-Type: application/json' -d '{"quantity": 10, "price": 100.0, "side": 1}')
maker_id=$(field id <<<"$maker")
expect "resting buy" "$(field status <<<"$maker")" open
taker=$(curl -s -X POST "$base/order/" -H 'Content-Type: application/json' -d '{"quantity": 4, "price": 99.5, "side": -1}')
expect "crossing sell" "$(field status <<<"$taker")/$(field filled_quantity <<<"$taker")" filled/4
before=$(curl -s "$base/order/$maker_id")
expect "maker after the trade" "$(field status <<<"$before")/$(field traded_quantity <<<"$before")/$(field average_traded_price <<<"$before")" "partially filled/4/100.0"

# A stop is SIGTERM: a clean shutdown, exit 0, and the book is kept.
"${compose[@]}" stop
expect "exit code after stop" "$(exit_code)" 0
"${compose[@]}" up -d
wait_healthy
expect "maker after a restart" "$(curl -s "$base/order/$maker_id")" "$before"

# A crash: SIGKILL after a further order; the journal brings it back.
late=$(curl -s -X POST "$base/order/" -H 'Content-Type: application/json' -d '{"quantity": 7, "price": 101.0, "side": -1}')
late_id=$(field id <<<"$late")
"${compose[@]}" kill -s SIGKILL
"${compose[@]}" up -d
wait_healthy
expect "maker after SIGKILL" "$(curl -s "$base/order/$maker_id")" "$before"
recovered=$(curl -s "$base/order/$late_id")
expect "late sell after SIGKILL" "$(field status <<<"$recovered")/$(field order_quantity <<<"$recovered")/$(field order_price <<<"$recovered")" open/7/101.0

echo "docker_smoke: OK (build, API on :8000, Docker health healthy, clean stop exit 0, restart and SIGKILL keep the book)"
