#!/usr/bin/env bash
# benches/big_values.sh — what big values and edits of big values cost,
# kvserver vs redis-server, each with its log on:
#
#  1. Peak memory of one SET of SIZES MiB (a fresh server per size; peak
#     resident memory growth from /proc/PID/status VmHWM, as a multiple of
#     the value). kvserver: fsync = interval; Redis: appendfsync everysec.
#  2. APPENDS one-byte APPENDs to a 10 MiB value under fsync = always /
#     appendfsync always, then interval / everysec: operations per second
#     (one client, one at a time) and log growth.
#  3. INFO latency (median of 50) after 250 clients each ran the same 49
#     different commands once.
#
# Usage: cargo build --release && benches/big_values.sh
#   SIZES="64 512"  APPENDS=200
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

SIZES=${SIZES:-"64 512"}
APPENDS=${APPENDS:-200}
KV_PORT=${KV_PORT:-7801}
REDIS_PORT=${REDIS_PORT:-7802}

start_kv() { # start_kv FSYNC
  rm -rf "$WORK/kv" && mkdir -p "$WORK/kv"
  target/release/kvserver --port "$KV_PORT" --dir "$WORK/kv" --fsync "$1" >"$WORK/kv.log" 2>&1 &
  KV_PID=$!
  PIDS+=("$KV_PID")
  wait_ping "$KV_PORT"
}

start_redis() { # start_redis APPENDFSYNC
  rm -rf "$WORK/redis" && mkdir -p "$WORK/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save '' \
    --appendonly yes --appendfsync "$1" --proto-max-bulk-len 1gb \
    --client-query-buffer-limit 2gb >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_ping "$REDIS_PORT"
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Everything measured from Python: one client, exact byte counts.
measure() { python3 - "$@" <<'EOF'
import socket, sys, time, os, glob, statistics

def status(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def reply(s):
    buf = b""
    while not buf.endswith(b"\r\n"):
        buf += s.recv(1)
    if buf[:1] == b"$" and int(buf[1:-2]) >= 0:
        n = int(buf[1:-2]) + 2
        body = b""
        while len(body) < n:
            body += s.recv(n - len(body))
        return body[:-2]
    return buf.strip()

def log_size(path):
    return sum(os.path.getsize(f) for f in glob.glob(path))

mode = sys.argv[1]
if mode == "bigset":
    port, pid, mib = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    s = connect(port)
    reply_ = (s.sendall(resp("PING")), reply(s))
    size = mib << 20
    value = b"v" * size
    before = status(pid, "VmRSS")
    t = time.time()
    s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % size)
    view = memoryview(value)
    for i in range(0, size, 1 << 20):
        s.sendall(view[i:i + (1 << 20)])
    s.sendall(b"\r\n")
    r = reply(s)
    elapsed = time.time() - t
    peak = status(pid, "VmHWM")
    print(f"{mib} MiB SET: {r.decode()} in {elapsed:.2f} s, peak RSS growth {(peak - before) / size:.2f}x the value ({(peak - before) >> 20} MiB)")
elif mode == "append":
    port, logglob, n = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    s = connect(port)
    s.sendall(resp("SET", "big", b"v" * (10 << 20))); reply(s)
    time.sleep(1.5)
    before = log_size(logglob)
    t = time.time()
    for i in range(n):
        s.sendall(resp("APPEND", "big", "x")); reply(s)
    elapsed = time.time() - t
    time.sleep(1.5)
    grown = log_size(logglob) - before
    print(f"{n} one-byte APPENDs to 10 MiB: {n / elapsed:,.0f} ops/s, log +{grown:,} bytes")
elif mode == "info":
    port = int(sys.argv[2])
    # 49 different commands, each client runs every one once (the issue's load:
    # per-command statistics for 49 commands on every worker).
    cmds = [("SET", "k", "v"), ("GET", "k"), ("INCR", "n"), ("DECR", "n"), ("INCRBY", "n", "2"),
            ("DECRBY", "n", "2"), ("APPEND", "a", "x"), ("STRLEN", "a"), ("GETRANGE", "a", "0", "1"),
            ("SETRANGE", "a", "0", "y"), ("MSET", "m1", "1", "m2", "2"), ("MGET", "m1", "m2"),
            ("SETNX", "nx", "1"), ("GETSET", "gs", "1"), ("SETEX", "ex", "100", "v"),
            ("PSETEX", "px", "100000", "v"), ("GETDEL", "gd"), ("EXISTS", "k"), ("TYPE", "k"),
            ("TTL", "ex"), ("PTTL", "ex"), ("EXPIRE", "k", "100"), ("PEXPIRE", "k", "100000"),
            ("PERSIST", "k"), ("TOUCH", "k"), ("UNLINK", "nx"), ("DEL", "gs"), ("RENAME", "m1", "m3"),
            ("RANDOMKEY",), ("DBSIZE",), ("SCAN", "0"), ("KEYS", "zz*"), ("ECHO", "e"), ("PING",),
            ("TIME",), ("SELECT", "0"), ("HSET", "h", "f", "v"), ("HGET", "h", "f"),
            ("HMGET", "h", "f", "g"), ("HLEN", "h"), ("HEXISTS", "h", "f"), ("HKEYS", "h"),
            ("HVALS", "h"), ("HGETALL", "h"), ("HINCRBY", "h", "c", "1"), ("HSTRLEN", "h", "f"),
            ("HSETNX", "h", "g", "1"), ("HDEL", "h", "g"), ("OBJECT", "ENCODING", "k")]
    assert len({c[0] + (c[1] if c[0] == "OBJECT" else "") for c in cmds}) == 49
    clients = [connect(port) for _ in range(250)]
    for c in clients:
        for cmd in cmds:
            c.sendall(resp(*cmd)); reply(c)
    s = connect(port)
    times = []
    for _ in range(50):
        t = time.perf_counter(); s.sendall(resp("INFO")); reply(s); times.append(time.perf_counter() - t)
    print(f"INFO after 250 clients x 49 commands: median {statistics.median(times) * 1000:.2f} ms")
EOF
}

for mib in $SIZES; do
  echo "== SET of $mib MiB"
  start_kv interval
  printf 'kvserver: '; measure bigset "$KV_PORT" "$KV_PID" "$mib"
  stop "$KV_PID"
  start_redis everysec
  printf 'redis:    '; measure bigset "$REDIS_PORT" "$REDIS_PID" "$mib"
  stop "$REDIS_PID"
done

for policies in always:always interval:everysec; do
  echo "== APPEND, kvserver fsync = ${policies%%:*}, redis appendfsync ${policies##*:}"
  start_kv "${policies%%:*}"
  printf 'kvserver: '; measure append "$KV_PORT" "$WORK/kv/kvserver.wal" "$APPENDS"
  stop "$KV_PID"
  start_redis "${policies##*:}"
  printf 'redis:    '; measure append "$REDIS_PORT" "$WORK/redis/appendonlydir/*" "$APPENDS"
  stop "$REDIS_PID"
done

echo "== INFO"
start_kv interval
printf 'kvserver: '; measure info "$KV_PORT"
stop "$KV_PID"
start_redis everysec
printf 'redis:    '; measure info "$REDIS_PORT"
stop "$REDIS_PID"
