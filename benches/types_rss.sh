#!/usr/bin/env bash
# benches/types_rss.sh — memory of lists, sets and sorted sets, kvserver vs redis-server.
#
# Loads the same data into each server (no persistence) with `redis-cli --pipe`
# and reports the growth of VmRSS over the empty server:
#   list:  one list of 1 000 000 items of 10 bytes
#   sets:  100 000 sets of 10 small integers
#   zsets: 100 000 sorted sets of 20 members
# Usage: cargo build --release && benches/types_rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
KV=${KVSERVER:-target/release/kvserver}
WORK=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

python3 - "$WORK" <<'PY'
import sys
work = sys.argv[1]
def cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)
with open(f"{work}/list.resp", "wb") as f:
    for chunk in range(1000):
        f.write(cmd("RPUSH", "biglist", *[b"item%06d" % (chunk * 1000 + i) for i in range(1000)]))
with open(f"{work}/sets.resp", "wb") as f:
    for s in range(100000):
        f.write(cmd("SADD", f"set:{s}", *range(s % 7, s % 7 + 10)))
with open(f"{work}/zsets.resp", "wb") as f:
    for z in range(100000):
        args = []
        for m in range(20):
            args += [m * 1.5, f"member:{m}"]
        f.write(cmd("ZADD", f"zset:{z}", *args))
PY

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

measure() { # name start-command... -> prints "list sets zsets" growth in MiB
  local port=$1; shift
  local out=""
  for data in list sets zsets; do
    "$@" >/dev/null 2>&1 &
    PID=$!
    for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    local before after
    before=$(rss_kib "$PID")
    redis-cli -p "$port" --pipe < "$WORK/$data.resp" >/dev/null
    after=$(rss_kib "$PID")
    out="$out $(echo "scale=1; ($after - $before) / 1024" | bc)"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  done
  echo "$out"
}

kv=$(measure 16381 "$KV" --port 16381 --no-wal --loglevel warn)
redis=$(measure 16382 redis-server --port 16382 --save "" --appendonly no)
echo "| data | kvserver RSS growth MiB | redis RSS growth MiB |"
echo "|---|---:|---:|"
paste <(printf '%s\n' "1M-item list (10 B items)" "100k sets of 10 ints" "100k zsets of 20 members") \
      <(printf '%s\n' $kv) <(printf '%s\n' $redis) | awk -F'\t' '{printf "| %s | %s | %s |\n", $1, $2, $3}'
