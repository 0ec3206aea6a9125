#!/usr/bin/env bash
# benches/maxmem.sh — cache mode, kvserver vs redis-server at the same maxmemory.
#
# 1. Full-cache SET throughput: both servers run with MAXMEM and allkeys-lru,
#    are filled past the limit, then `redis-benchmark -t set -r 10000000
#    -d 100 -c 50 -n N` runs against each, alternating A B A B A B; every SET
#    evicts. Prints req/s and server CPU µs per request (utime+stime from
#    /proc/PID/stat) per round and the medians.
# 2. Zipf hit ratio: for allkeys-lru and allkeys-lfu, both servers (fresh,
#    same ZMAXMEM, small enough that the SET phase fills it and evicts) get
#    `kvbench -t set,get -r KEYS --key-pattern zipf:S` (SETs fill the cache
#    past the limit with a skewed stream, then GETs of the same distribution
#    report the hit ratio). evicted_keys shows the cache was full.
# Servers are stopped on exit (trap).
#
# Usage: cargo build --release && benches/maxmem.sh
# Env:   MAXMEM=50mb ZMAXMEM=20mb N=200000 ROUNDS=3 KEYS=1000000 ZIPF=0.99 ZN=1000000
#        KV_PORT=16394 REDIS_PORT=16395 PARTS="set zipf" (which parts to run)
set -euo pipefail
cd "$(dirname "$0")/.."
MAXMEM=${MAXMEM:-50mb}
ZMAXMEM=${ZMAXMEM:-20mb}
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
KEYS=${KEYS:-1000000}
ZIPF=${ZIPF:-0.99}
ZN=${ZN:-1000000}
KV_PORT=${KV_PORT:-16394}
REDIS_PORT=${REDIS_PORT:-16395}
PARTS=${PARTS:-"set zipf"}
CLK_TCK=$(getconf CLK_TCK)
# shellcheck source=benches/lib.sh
source benches/lib.sh

cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

start() { # policy maxmemory -> sets KV and REDIS pids
  target/release/kvserver --no-wal --port "$KV_PORT" --dir "$WORK/kv" \
    --maxmemory "$2" --maxmemory-policy "$1" >"$WORK/kv.log" 2>&1 & KV=$!; PIDS+=("$KV")
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save '' --appendonly no \
    --maxmemory "$2" --maxmemory-policy "$1" >"$WORK/redis.log" 2>&1 & REDIS=$!; PIDS+=("$REDIS")
  wait_ping "$KV_PORT"; wait_ping "$REDIS_PORT"
}
stop() { kill "$KV" "$REDIS" 2>/dev/null || true; wait "$KV" "$REDIS" 2>/dev/null || true; }

if [[ " $PARTS " == *" set "* ]]; then
echo "## Full-cache SET, maxmemory $MAXMEM, allkeys-lru (redis-benchmark -t set -r 10000000 -d 100 -c 50 -n $N)"
start allkeys-lru "$MAXMEM"
for port in "$KV_PORT" "$REDIS_PORT"; do
  redis-benchmark -p "$port" -t set -r 10000000 -d 100 -n 1000000 -P 64 -c 10 -q >/dev/null
done
echo
echo "| round | server | req/s | CPU µs/req | evicted_keys | used_memory |"
echo "|---:|---|---:|---:|---:|---:|"
: >"$WORK/kv.rows"; : >"$WORK/redis.rows"
for r in $(seq 1 "$ROUNDS"); do
  for s in kvserver redis; do
    if [ $s = kvserver ]; then port=$KV_PORT pid=$KV; else port=$REDIS_PORT pid=$REDIS; fi
    c0=$(cpu_ticks "$pid")
    rps=$(redis-benchmark -p "$port" -t set -r 10000000 -d 100 -c 50 -n "$N" --csv | tail -1 | cut -d, -f2 | tr -d '"')
    c1=$(cpu_ticks "$pid")
    cpu=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" -v n="$N" 'BEGIN {printf "%.2f", (b - a) / t * 1e6 / n}')
    ev=$(redis-cli -p "$port" info stats | tr -d '\r' | awk -F: '/^evicted_keys:/ {print $2}')
    um=$(redis-cli -p "$port" info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')
    echo "| $r | $s | $rps | $cpu | $ev | $um |"
    echo "$rps $cpu" >>"$WORK/$s.rows"
  done
done
for s in kvserver redis; do
  echo "median $s: $(awk '{print $1}' "$WORK/$s.rows" | median) req/s, $(awk '{print $2}' "$WORK/$s.rows" | median) µs CPU/req"
done
stop
fi

[[ " $PARTS " == *" zipf "* ]] || exit 0
for policy in allkeys-lru allkeys-lfu; do
  echo
  echo "## Zipf $ZIPF hit ratio, $policy, maxmemory $ZMAXMEM (kvbench -t set,get -r $KEYS --key-pattern zipf:$ZIPF -n $ZN -d 100 -P 16)"
  start "$policy" "$ZMAXMEM"
  for s in kvserver redis; do
    if [ $s = kvserver ]; then port=$KV_PORT; else port=$REDIS_PORT; fi
    out=$(target/release/kvbench -p "$port" -t set,get -r "$KEYS" --key-pattern "zipf:$ZIPF" -n "$ZN" -d 100 -P 16 -c 10 -q)
    keys=$(redis-cli -p "$port" dbsize)
    ev=$(redis-cli -p "$port" info stats | tr -d '\r' | awk -F: '/^evicted_keys:/ {print $2}')
    echo "$s: $(echo "$out" | grep -i 'GET' | tr '\n' ' ') keys=$keys evicted_keys=$ev"
  done
  stop
done
