#!/usr/bin/env bash
# benches/ctxswitch.sh — context switches per request (sum over /proc/PID/task/*/status)
# for kvserver --no-wal and redis-server, redis-benchmark -t set -n 200000 -c 50 -P 1|16.
# Usage: cargo build --release && benches/ctxswitch.sh
set -u
cd "$(dirname "$0")/.."
trap 'kill $KP $RP 2>/dev/null; rm -rf "$D"' EXIT
D=$(mktemp -d)
target/release/kvserver --no-wal --port 16388 --dir $D >/dev/null 2>&1 & KP=$!
redis-server --port 16389 --bind 127.0.0.1 --dir $D --save '' --appendonly no >/dev/null 2>&1 & RP=$!
sleep 0.7
cs() { cat /proc/$1/task/*/status | awk '/^voluntary_ctxt_switches/ {v+=$2} /^nonvoluntary_ctxt_switches/ {n+=$2} END {print v, n}'; }
for P in 1 16; do for s in kv redis; do
  pid=$KP; port=16388; [ $s = redis ] && pid=$RP && port=16389
  b=$(cs $pid); timeout 60 redis-benchmark -p $port -t set -n 200000 -c 50 -P $P -r 100000 -q >/dev/null 2>&1; a=$(cs $pid)
  echo "$b $a" | awk -v s=$s -v P=$P '{printf "%s -P %s: voluntary %.3f, involuntary %.3f context switches per request\n", s, P, ($3-$1)/200000, ($4-$2)/200000}'
done; done
kill $KP $RP; wait $KP $RP; rm -rf $D
