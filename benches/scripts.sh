#!/usr/bin/env bash
# benches/scripts.sh — EVALSHA throughput and server CPU per request, kvserver
# against redis-server (issue 18's bar).
#
# Loads two scripts into both servers — one command (`INCR KEYS[1]`) and
# five (`INCR`, `GET`, `EXPIRE`, `TTL`, `GET` on KEYS[1]) — then runs
# `redis-benchmark -c 50 -n N -r 100000 -P p EVALSHA <sha> 1 counter:__rand_int__`
# against each server, alternating kvserver/redis for every round, and prints
# the median requests/s and server CPU µs per request (utime+stime from
# /proc/PID/stat) of each cell and their ratios. kvserver runs with --no-wal
# and redis-server without persistence (both in-memory).
#
# Usage: cargo build --release && benches/scripts.sh
# Env:   N=200000, ROUNDS=3, PIPELINES="1 16", KV_PORT=16392, REDIS_PORT=16393
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
PIPELINES=${PIPELINES:-"1 16"}
KV_PORT=${KV_PORT:-16392}
REDIS_PORT=${REDIS_PORT:-16393}
CLK_TCK=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

target/release/kvserver --port "$KV_PORT" --no-wal --loglevel warn &
KV_PID=$!
PIDS+=("$KV_PID")
redis-server --port "$REDIS_PORT" --save '' --appendonly no --dir "$WORK" --loglevel warning &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
wait_ping "$KV_PORT"
wait_ping "$REDIS_PORT"

ONE="return redis.call('INCR', KEYS[1])"
FIVE="redis.call('INCR', KEYS[1]); redis.call('GET', KEYS[1]); redis.call('EXPIRE', KEYS[1], 100); redis.call('TTL', KEYS[1]); return redis.call('GET', KEYS[1])"

bench() { # port pid sha pipeline -> "rps cpu_us"
  local before after rps
  before=$(cpu_ticks "$2")
  rps=$(redis-benchmark -p "$1" -c 50 -n "$N" -r 100000 -P "$4" --csv \
    EVALSHA "$3" 1 counter:__rand_int__ | awk -F'"' 'NR==2 {print $4}')
  after=$(cpu_ticks "$2")
  awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$N" -v r="$rps" \
    'BEGIN {printf "%s %.2f\n", r, t / hz * 1e6 / n}'
}

echo "| script | -P | kvserver req/s | redis req/s | A/B | kvserver CPU µs/req | redis CPU µs/req | CPU ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for name in one five; do
  body=$ONE
  [ "$name" = five ] && body=$FIVE
  kv_sha=$(redis-cli -p "$KV_PORT" SCRIPT LOAD "$body")
  redis_sha=$(redis-cli -p "$REDIS_PORT" SCRIPT LOAD "$body")
  [ "$kv_sha" = "$redis_sha" ] || { echo "SHA mismatch: $kv_sha vs $redis_sha" >&2; exit 1; }
  for p in $PIPELINES; do
    : >"$WORK/kv" && : >"$WORK/redis"
    for _ in $(seq 1 "$ROUNDS"); do
      bench "$KV_PORT" "$KV_PID" "$kv_sha" "$p" >>"$WORK/kv"
      bench "$REDIS_PORT" "$REDIS_PID" "$redis_sha" "$p" >>"$WORK/redis"
    done
    kv_rps=$(cut -d' ' -f1 "$WORK/kv" | median)
    kv_cpu=$(cut -d' ' -f2 "$WORK/kv" | median)
    r_rps=$(cut -d' ' -f1 "$WORK/redis" | median)
    r_cpu=$(cut -d' ' -f2 "$WORK/redis" | median)
    awk -v n="$name" -v p="$p" -v a="$kv_rps" -v b="$r_rps" -v ca="$kv_cpu" -v cb="$r_cpu" \
      'BEGIN {printf "| %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f |\n", n, p, a, b, a / b, ca, cb, ca / cb}'
  done
done
