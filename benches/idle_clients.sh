#!/usr/bin/env bash
# benches/idle_clients.sh — memory and threads per idle client.
#
# Starts kvserver --no-wal and redis-server (--save '' --appendonly no) on
# loopback, opens N idle connections to each (each sends one PING first, as
# a pooled client library connection does, then stays idle), and prints the
# RSS growth per client and the thread count of each server.
#
# Usage: cargo build --release && benches/idle_clients.sh     Env: N=10000
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
KV_PORT=${KV_PORT:-16394}
REDIS_PORT=${REDIS_PORT:-16395}
# shellcheck source=benches/lib.sh
source benches/lib.sh
ulimit -n "$(ulimit -Hn)"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

target/release/kvserver --no-wal --port "$KV_PORT" --dir "$WORK/kv" --maxclients $((N + 100)) >"$WORK/kv.log" 2>&1 & KV=$!; PIDS+=("$KV")
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save '' --appendonly no --maxclients $((N + 100)) >"$WORK/redis.log" 2>&1 & REDIS=$!; PIDS+=("$REDIS")
wait_ping "$KV_PORT"; wait_ping "$REDIS_PORT"

for s in kvserver redis; do
  pid=$KV; port=$KV_PORT; [ $s = redis ] && pid=$REDIS && port=$REDIS_PORT
  before=$(rss_kb "$pid")
  python3 - "$port" "$N" "$pid" "$before" "$s" <<'PY'
import socket, sys, time
port, n, pid, before, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
conns = []
for i in range(n):
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"*1\r\n$4\r\nPING\r\n")
    conns.append(c)
for c in conns:
    assert c.recv(16) == b"+PONG\r\n"
time.sleep(2.5)  # let the server's idle sweep run
status = open(f"/proc/{pid}/status").read()
rss = int([l for l in status.splitlines() if l.startswith("VmRSS:")][0].split()[1])
threads = int([l for l in status.splitlines() if l.startswith("Threads:")][0].split()[1])
print(f"{name}: {n} idle clients, RSS {before} -> {rss} KiB, {(rss - before) * 1024 / n:.0f} bytes per client, {threads} threads")
for c in conns:
    c.close()
PY
done
