#!/usr/bin/env bash
# benches/client.sh — load-tool efficiency: kvbench vs redis-benchmark against
# the same redis-server (--save '' --appendonly no). Alternating runs; req/s
# from -q output, client CPU (user+sys from /usr/bin/time) per request.
#
# Usage: cargo build --release && benches/client.sh   Env: N=200000 ROUNDS=3 LOADS="1 16" C=50
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
LOADS=${LOADS:-"1 16"}
C=${C:-50}
PORT=${PORT:-16396}
# shellcheck source=benches/lib.sh
source benches/lib.sh
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK" --save '' --appendonly no >"$WORK/redis.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 100); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "redis-server, -c $C, -n $N per test, -t set,get -r 100000, medians of $ROUNDS alternating runs"
echo
echo "| -P | tool | SET req/s | GET req/s | client CPU µs/request |"
echo "|---:|---|---:|---:|---:|"
for P in $LOADS; do
  : >"$WORK/redis-benchmark"; : >"$WORK/kvbench"
  for _ in $(seq 1 "$ROUNDS"); do
    for tool in redis-benchmark kvbench; do
      bin=$tool; [ $tool = kvbench ] && bin=target/release/kvbench
      /usr/bin/time -f "%U %S" -o "$WORK/time" timeout 300 "$bin" -p "$PORT" -c "$C" -n "$N" -P "$P" \
        -t set,get -r 100000 -q 2>/dev/null | tr '\r' '\n' | grep 'requests per second' >"$WORK/out"
      set_rps=$(awk -F'[: ]+' '/^SET/ {print $2}' "$WORK/out"); get_rps=$(awk -F'[: ]+' '/^GET/ {print $2}' "$WORK/out")
      cpu=$(awk -v n="$N" '{printf "%.2f", ($1 + $2) / (2 * n) * 1e6}' "$WORK/time")
      echo "$set_rps $get_rps $cpu" >>"$WORK/$tool"
    done
  done
  for tool in redis-benchmark kvbench; do
    f=$WORK/$tool
    echo "| $P | $tool | $(awk '{print $1}' "$f" | median) | $(awk '{print $2}' "$f" | median) | $(awk '{print $3}' "$f" | median) |"
  done
done
