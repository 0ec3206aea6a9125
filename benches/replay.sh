#!/usr/bin/env bash
# benches/replay.sh — recovery speed: kvserver WAL replay vs redis-server AOF load.
#
# Writes the same N SETs (random keys, 100-byte values) into a kvserver
# (default WAL) and into a redis-server with appendonly yes (everysec), stops
# both cleanly, then restarts each on its data and measures the time from
# process start to the first PONG, plus the replay rate kvserver logs.
# Servers are stopped on exit (trap).
#
# Usage: cargo build --release && benches/replay.sh     Env: N=1000000 ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
KV_PORT=${KV_PORT:-16390}
REDIS_PORT=${REDIS_PORT:-16391}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

wait_ping() { # port -> seconds waited (polls every 2 ms)
  local start=$(date +%s.%N)
  for _ in $(seq 1 30000); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && break
    sleep 0.002
  done
  echo "$(date +%s.%N) - $start" | bc
}

start_kv() { target/release/kvserver --port "$KV_PORT" --dir "$WORK/kv" >>"$WORK/kv.log" 2>&1 & KV=$!; PIDS+=("$KV"); }
start_redis() {
  redis-server --port "$REDIS_PORT" --dir "$WORK/redis" --save '' --appendonly yes \
    --appendfsync everysec >>"$WORK/redis.log" 2>&1 & REDIS=$!; PIDS+=("$REDIS")
}
mkdir -p "$WORK/kv" "$WORK/redis"

echo "loading $N SETs into each server..."
start_kv; start_redis
wait_ping "$KV_PORT" >/dev/null; wait_ping "$REDIS_PORT" >/dev/null
redis-benchmark -p "$KV_PORT" -t set -n "$N" -r 100000000 -d 100 -P 64 -c 10 -q >/dev/null
redis-benchmark -p "$REDIS_PORT" -t set -n "$N" -r 100000000 -d 100 -P 64 -c 10 -q >/dev/null
echo "kvserver keys: $(redis-cli -p "$KV_PORT" dbsize)  redis keys: $(redis-cli -p "$REDIS_PORT" dbsize)"
kill "$KV" "$REDIS"; wait "$KV" "$REDIS" 2>/dev/null || true
echo "kvserver WAL: $(du -h "$WORK/kv/kvserver.wal" | cut -f1)  redis AOF dir: $(du -sh "$WORK/redis" | cut -f1)"

echo
echo "| round | kvserver s to first PONG | redis s to first PONG |"
echo "|---:|---:|---:|"
for r in $(seq 1 "$ROUNDS"); do
  start_kv; k=$(wait_ping "$KV_PORT"); kill "$KV"; wait "$KV" 2>/dev/null || true
  start_redis; d=$(wait_ping "$REDIS_PORT"); kill "$REDIS"; wait "$REDIS" 2>/dev/null || true
  echo "| $r | $k | $d |"
done
echo
echo "kvserver replay log lines:"
grep -o 'replayed.*' "$WORK/kv.log" | tail -n "$ROUNDS"
echo "redis load log lines:"
grep -E 'DB loaded|Done loading' "$WORK/redis.log" | tail -n "$ROUNDS"
