#!/usr/bin/env bash
# benches/maxmem_check.sh — what the per-command maxmemory check costs.
#
# Runs `redis-benchmark -t set,get -c 50 -P 16 -d 3` against two kvserver
# binaries (PREV and NEW), each with `maxmemory 0` and with a limit far above
# the data (LIMIT), alternating PREV/NEW for every round, and prints the median
# throughput and server CPU per request (utime+stime from /proc/PID/stat) of
# each cell. Servers run with their WAL (fsync interval) in a temp dir.
#
# Usage: PREV=/path/kvserver-before NEW=target/release/kvserver benches/maxmem_check.sh
# Env:   N=1000000 requests per test, ROUNDS=3, LIMIT=8gb, PORT=16390
set -euo pipefail
cd "$(dirname "$0")/.."
PREV=${PREV:?set PREV to the previous release binary}
NEW=${NEW:-target/release/kvserver}
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
LIMIT=${LIMIT:-8gb}
PORT=${PORT:-16390}
CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # binary maxmemory -> "set_rps get_rps cpu_us_per_req"
  rm -rf "$WORK/data"
  "$1" --port "$PORT" --dir "$WORK/data" --maxmemory "$2" --loglevel warn &
  PID=$!
  for _ in $(seq 1 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  local before after out
  before=$(cpu_ticks "$PID")
  out=$(redis-benchmark -p "$PORT" -t set,get -c 50 -P 16 -d 3 -n "$N" -r 100000 --csv 2>/dev/null)
  after=$(cpu_ticks "$PID")
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  local set get
  set=$(echo "$out" | awk -F'"' '/^"SET"/ {print $4}')
  get=$(echo "$out" | awk -F'"' '/^"GET"/ {print $4}')
  echo "$set $get $(echo "($after - $before) * 1000000 / $CLK_TCK / (2 * $N)" | bc -l)"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A RES
for round in $(seq 1 "$ROUNDS"); do
  for mm in 0 "$LIMIT"; do
    for which in prev new; do
      bin=$PREV; [ "$which" = new ] && bin=$NEW
      RES[$which,$mm,$round]=$(run "$bin" "$mm")
      echo "round $round maxmemory $mm $which: ${RES[$which,$mm,$round]}" >&2
    done
  done
done
echo "| maxmemory | binary | SET rps | GET rps | server CPU µs/request |"
echo "|---|---|---|---|---|"
for mm in 0 "$LIMIT"; do
  for which in prev new; do
    col() { for r in $(seq 1 "$ROUNDS"); do echo "${RES[$which,$mm,$r]}" | awk "{print \$$1}"; done | median; }
    printf "| %s | %s | %.0f | %.0f | %.3f |\n" "$mm" "$which" "$(col 1)" "$(col 2)" "$(col 3)"
  done
done
