#!/usr/bin/env bash
# benches/replay.sh — recovery speed: kvserver WAL replay vs redis-server AOF load.
#
# Writes the same N SETs (random keys, 100-byte values) into a kvserver
# (default WAL) and into a redis-server with appendonly yes (everysec), stops
# both cleanly, then restarts each on its data and measures the time from
# process start to the first PONG, plus the replay rate each server logs.
# Both logs are kept as plain command logs: kvserver's automatic compaction
# (compact-growth-percent = 0) and redis' automatic AOF rewrite
# (auto-aof-rewrite-percentage 0, which would otherwise turn most of the AOF
# into an RDB preamble) are disabled, so each server replays N records.
# Servers are stopped on exit (trap).
#
# Usage: cargo build --release && benches/replay.sh     Env: N=1000000 ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
KV_PORT=${KV_PORT:-16390}
REDIS_PORT=${REDIS_PORT:-16391}
# shellcheck source=benches/lib.sh
source benches/lib.sh

time_to_pong() { # port [start] -> seconds from start (default: now) to the first PONG (polls every 2 ms)
  local start=${2:-$(date +%s.%N)}
  for _ in $(seq 1 30000); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && break
    sleep 0.002
  done
  echo "$(date +%s.%N) - $start" | bc
}

start_kv() {
  target/release/kvserver --config "$WORK/kv.toml" --port "$KV_PORT" --dir "$WORK/kv" >>"$WORK/kv.log" 2>&1 &
  KV=$!; PIDS+=("$KV")
}
start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save '' --appendonly yes \
    --appendfsync everysec --auto-aof-rewrite-percentage 0 --aof-use-rdb-preamble no \
    >>"$WORK/redis.log" 2>&1 & REDIS=$!; PIDS+=("$REDIS")
}
mkdir -p "$WORK/kv" "$WORK/redis"
echo "compact-growth-percent = 0" >"$WORK/kv.toml"

echo "loading $N SETs into each server..."
start_kv; start_redis
wait_ping "$KV_PORT"; wait_ping "$REDIS_PORT"
redis-benchmark -p "$KV_PORT" -t set -n "$N" -r 100000000 -d 100 -P 64 -c 10 -q >/dev/null
redis-benchmark -p "$REDIS_PORT" -t set -n "$N" -r 100000000 -d 100 -P 64 -c 10 -q >/dev/null
echo "kvserver keys: $(redis-cli -p "$KV_PORT" dbsize)  redis keys: $(redis-cli -p "$REDIS_PORT" dbsize)"
kill "$KV" "$REDIS"; wait "$KV" "$REDIS" 2>/dev/null || true
echo "kvserver WAL: $(du -h "$WORK/kv/kvserver.wal" | cut -f1)  redis AOF dir: $(du -sh "$WORK/redis" | cut -f1)"
ls -l "$WORK/redis"/appendonlydir 2>/dev/null || true

echo
echo "| round | kvserver s to first PONG | redis s to first PONG |"
echo "|---:|---:|---:|"
for r in $(seq 1 "$ROUNDS"); do
  t0=$(date +%s.%N); start_kv; k=$(time_to_pong "$KV_PORT" "$t0"); kill "$KV"; wait "$KV" 2>/dev/null || true
  t0=$(date +%s.%N); start_redis; d=$(time_to_pong "$REDIS_PORT" "$t0"); kill "$REDIS"; wait "$REDIS" 2>/dev/null || true
  echo "| $r | $k | $d |"
done
echo
echo "kvserver replay log lines:"
grep -o 'replayed.*' "$WORK/kv.log" | tail -n "$ROUNDS"
echo "redis load log lines:"
grep -E 'DB loaded|Done loading' "$WORK/redis.log" | tail -n "$ROUNDS"
echo "redis records/s (N / 'DB loaded' seconds):"
grep -o 'DB loaded from append only file: [0-9.]* seconds' "$WORK/redis.log" | tail -n "$ROUNDS" |
  awk -v n="$N" '{s=$(NF-1); printf "%.3f s  %.0f records/s\n", s, (s > 0 ? n / s : 0)}'
