#!/usr/bin/env bash
# benches/rss.sh — memory per key: RSS growth after loading ~N distinct keys.
#
# Starts kvserver --no-wal and redis-server (--save '' --appendonly no) on
# loopback, reads VmRSS from /proc/PID/status, loads N SETs with random keys
# (redis-benchmark -r 1000000000, so ~N distinct keys) and VALUE-byte values,
# then prints DBSIZE, RSS before/after and (after - before) / DBSIZE.
# Servers are stopped on exit (trap).
#
# Usage: cargo build --release && benches/rss.sh     Env: N=1000000 VALUE=100
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
VALUE=${VALUE:-100}
KV_PORT=${KV_PORT:-16392}
REDIS_PORT=${REDIS_PORT:-16393}
# shellcheck source=benches/lib.sh
source benches/lib.sh

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

target/release/kvserver --no-wal --port "$KV_PORT" --dir "$WORK/kv" >"$WORK/kv.log" 2>&1 & KV=$!; PIDS+=("$KV")
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save '' --appendonly no >"$WORK/redis.log" 2>&1 & REDIS=$!; PIDS+=("$REDIS")
wait_ping "$KV_PORT"; wait_ping "$REDIS_PORT"

echo "| server | DBSIZE | RSS before (KiB) | RSS after (KiB) | bytes/key |"
echo "|---|---:|---:|---:|---:|"
for s in kvserver redis; do
  if [ $s = kvserver ]; then port=$KV_PORT pid=$KV; else port=$REDIS_PORT pid=$REDIS; fi
  before=$(rss_kb "$pid")
  timeout 300 redis-benchmark -p "$port" -t set -n "$N" -r 1000000000 -d "$VALUE" -P 64 -c 10 -q >/dev/null
  sleep 1
  after=$(rss_kb "$pid")
  keys=$(redis-cli -p "$port" dbsize)
  echo "| $s | $keys | $before | $after | $(awk -v a="$after" -v b="$before" -v k="$keys" 'BEGIN {printf "%.1f", (a - b) * 1024 / k}') |"
done
echo
echo "redis INFO memory: $(redis-cli -p "$REDIS_PORT" info memory | grep -E '^(used_memory|mem_allocator):' | tr -d '\r' | tr '\n' ' ')"
