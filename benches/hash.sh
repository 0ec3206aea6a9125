#!/usr/bin/env bash
# benches/hash.sh — hashes: kvserver vs redis-server on the same box.
#
# 1. redis-benchmark -t hset -c 50 -n N, at -P 1 and -P 16, alternating
#    kvserver / redis ROUNDS times: requests/s and server CPU seconds per
#    million requests (utime+stime from /proc/PID/stat), medians.
# 2. kvbench hset (20 fields, -d 20), then hget, hmget (5 fields), hgetall of
#    those 20-field hashes, same alternation, -c 50.
# 3. RSS of 100 000 hashes x 20 fields (10-byte names, 20-byte values),
#    loaded with redis-cli --pipe.
# Both servers run without persistence (kvserver --no-wal, redis --save ''
# --appendonly no). Servers are stopped on exit (trap).
#
# Usage: cargo build --release && benches/hash.sh     Env: N=200000 ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
KV_PORT=${KV_PORT:-16394}
REDIS_PORT=${REDIS_PORT:-16395}
CLK_TCK=$(getconf CLK_TCK)
# shellcheck source=benches/lib.sh
source benches/lib.sh

cpu_s() { sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$CLK_TCK" '{print ($12 + $13) / t}'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

target/release/kvserver --no-wal --port "$KV_PORT" --dir "$WORK/kv" >"$WORK/kv.log" 2>&1 & KV=$!; PIDS+=("$KV")
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save '' --appendonly no >"$WORK/redis.log" 2>&1 & REDIS=$!; PIDS+=("$REDIS")
wait_ping "$KV_PORT"; wait_ping "$REDIS_PORT"
echo "redis: $(redis-server --version)"

# run SERVER LABEL CMD... -> appends "rps cpu_per_million" to $WORK/SERVER.LABEL
run() {
  local server=$1 label=$2; shift 2
  local port pid
  if [ "$server" = kv ]; then port=$KV_PORT pid=$KV; else port=$REDIS_PORT pid=$REDIS; fi
  local before after rps
  before=$(cpu_s "$pid")
  rps=$("$@" -p "$port" --csv | tail -1 | awk -F'","' '{print $2}')
  after=$(cpu_s "$pid")
  echo "$rps $(awk -v a="$after" -v b="$before" -v r="$rps" -v n="$N" 'BEGIN {printf "%.2f", (a - b) * 1e6 / n}')" >>"$WORK/$server.$label"
}

report() {
  local label=$1
  local kr kc rr rc
  kr=$(awk '{print $1}' "$WORK/kv.$label" | median); kc=$(awk '{print $2}' "$WORK/kv.$label" | median)
  rr=$(awk '{print $1}' "$WORK/redis.$label" | median); rc=$(awk '{print $2}' "$WORK/redis.$label" | median)
  echo "| $label | $kr | $rr | $(awk -v a="$kr" -v b="$rr" 'BEGIN {printf "%.2f", a / b}') | $kc | $rc | $(awk -v a="$kc" -v b="$rc" 'BEGIN {printf "%.2f", a / b}') |"
}

echo
echo "| test | kvserver req/s | redis req/s | ratio | kvserver CPU s/M req | redis CPU s/M req | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for P in 1 16; do
  for _ in $(seq 1 "$ROUNDS"); do
    for s in kv redis; do
      run "$s" "HSET -P $P" redis-benchmark -t hset -c 50 -n "$N" -P "$P" -r 100000
    done
  done
  report "HSET -P $P"
done
for t in hset hget hmget hgetall; do
  for _ in $(seq 1 "$ROUNDS"); do
    for s in kv redis; do
      run "$s" "kvbench $t" target/release/kvbench -t "$t" -c 50 -n "$N" -r 100000 -d 20
    done
  done
  report "kvbench $t"
done

echo
python3 - "$WORK/load.resp" <<'PY'
import sys
with open(sys.argv[1], 'wb') as out:
    for i in range(100000):
        args = [b'HSET', b'entity:%07d' % i]
        for f in range(20):
            args += [b'field%05d' % f, (b'value-%07d-%06d' % (i, f))[:20]]
        out.write(b'*%d\r\n' % len(args) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in args))
PY
# Fresh servers: freed memory is not always given back to the OS, so RSS
# after FLUSHALL would hide growth.
KV_PORT=$((KV_PORT + 10)); REDIS_PORT=$((REDIS_PORT + 10))
target/release/kvserver --no-wal --port "$KV_PORT" --dir "$WORK/kv2" >"$WORK/kv2.log" 2>&1 & KV=$!; PIDS+=("$KV")
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save '' --appendonly no >"$WORK/redis2.log" 2>&1 & REDIS=$!; PIDS+=("$REDIS")
wait_ping "$KV_PORT"; wait_ping "$REDIS_PORT"
echo "| server | hashes | RSS before (KiB) | RSS after (KiB) | bytes/hash |"
echo "|---|---:|---:|---:|---:|"
for s in kvserver redis; do
  if [ $s = kvserver ]; then port=$KV_PORT pid=$KV; else port=$REDIS_PORT pid=$REDIS; fi
  before=$(rss_kb "$pid")
  redis-cli -p "$port" --pipe <"$WORK/load.resp" >/dev/null
  sleep 1
  after=$(rss_kb "$pid")
  keys=$(redis-cli -p "$port" dbsize)
  echo "| $s | $keys | $before | $after | $(awk -v a="$after" -v b="$before" -v k="$keys" 'BEGIN {printf "%.0f", (a - b) * 1024 / k}') |"
done
echo "redis OBJECT ENCODING entity:0000001: $(redis-cli -p "$REDIS_PORT" object encoding entity:0000001)"
