#!/usr/bin/env bash
# benches/compare.sh — kvserver vs redis-server, same load generator, same box.
#
# Starts its own kvserver (target/release/kvserver) and redis-server on
# loopback, then for every combination of clients (-c), pipeline (-P) and
# value size (-d) and every test runs the load tool against both servers,
# alternating A B A B A B (medians of ROUNDS), and records each server's CPU
# seconds (utime+stime from /proc/PID/stat) per million requests. Prints
# markdown tables. Servers are stopped on exit (trap).
#
# Usage: cargo build --release && benches/compare.sh
# Env:   TOOL=kvbench|redis-benchmark (default kvbench; both emit the same CSV)
#        MODE=memory|aof|always|both|all (default memory; aof = redis appendonly
#             everysec vs kvserver's default WAL (fsync interval); always = redis
#             appendfsync always vs kvserver --fsync always; both = memory+aof)
#        RAW=file (append every run: mode test c P d server rps p50 p99 cpu),
#        N=50000 requests per run, ROUNDS=3, TESTS="set get",
#        CLIENTS="1 10 50 200", PIPELINES="1 16", SIZES="3 100",
#        KV_PORT=16380 REDIS_PORT=16379, KV_ARGS="--shards 1" (extra kvserver flags)
set -euo pipefail

cd "$(dirname "$0")/.."
TOOL=${TOOL:-kvbench}
MODE=${MODE:-memory}
N=${N:-50000}
ROUNDS=${ROUNDS:-3}
TESTS=${TESTS:-"set get"}
CLIENTS=${CLIENTS:-"1 10 50 200"}
PIPELINES=${PIPELINES:-"1 16"}
SIZES=${SIZES:-"3 100"}
KV_PORT=${KV_PORT:-16380}
REDIS_PORT=${REDIS_PORT:-16379}
KVSERVER=${KVSERVER:-target/release/kvserver}
CLK_TCK=$(getconf CLK_TCK)

case "$TOOL" in
  kvbench) BENCH=(target/release/kvbench) ;;
  redis-benchmark) BENCH=(redis-benchmark) ;;
  *) echo "TOOL must be kvbench or redis-benchmark" >&2; exit 2 ;;
esac
for bin in "$KVSERVER" "${BENCH[0]}"; do
  command -v "$bin" >/dev/null || [ -x "$bin" ] || {
    echo "missing $bin (run: cargo build --release)" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "redis-server not installed" >&2; exit 2; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_ping() { # port pid
  for _ in $(seq 1 100); do
    if [ "$(redis-cli -p "$1" ping 2>/dev/null)" = "PONG" ]; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "server on port $1 died" >&2; exit 1; }
    sleep 0.1
  done
  echo "server on port $1 did not answer PING" >&2; exit 1
}

cpu_ticks() { # pid -> utime+stime in clock ticks (fields 14+15; comm may contain spaces)
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

start_servers() { # mode
  local mode=$1
  for p in "$KV_PORT" "$REDIS_PORT"; do
    if port_busy "$p"; then echo "port $p is in use (set KV_PORT/REDIS_PORT)" >&2; exit 1; fi
  done
  mkdir -p "$WORK/kv-$mode" "$WORK/redis-$mode"
  local kv_args=(--port "$KV_PORT" --bind 127.0.0.1 --dir "$WORK/kv-$mode")
  # shellcheck disable=SC2206
  [ -n "${KV_ARGS:-}" ] && kv_args+=($KV_ARGS)
  local redis_args=(--port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis-$mode" --save '')
  if [ "$mode" = aof ]; then
    redis_args+=(--appendonly yes --appendfsync everysec)
  elif [ "$mode" = always ]; then
    kv_args+=(--fsync always)
    redis_args+=(--appendonly yes --appendfsync always)
  else
    kv_args+=(--no-wal)
    redis_args+=(--appendonly no)
  fi
  "$KVSERVER" "${kv_args[@]}" >"$WORK/kv-$mode.log" 2>&1 &
  KV_PID=$!; PIDS+=("$KV_PID")
  redis-server "${redis_args[@]}" >"$WORK/redis-$mode.log" 2>&1 &
  REDIS_PID=$!; PIDS+=("$REDIS_PID")
  wait_ping "$KV_PORT" "$KV_PID"
  wait_ping "$REDIS_PORT" "$REDIS_PID"
}

stop_servers() {
  kill "$KV_PID" "$REDIS_PID" 2>/dev/null || true
  wait "$KV_PID" "$REDIS_PID" 2>/dev/null || true
}

# one_run port pid test c P d -> "rps p50 p99 cpu_s_per_million"
# CSV (redis-benchmark 7 and kvbench): "test","rps","avg","min","p50","p95","p99","max"
one_run() {
  local port=$1 pid=$2 test=$3 c=$4 P=$5 d=$6 before after csv
  before=$(cpu_ticks "$pid")
  csv=$("${BENCH[@]}" -p "$port" -t "$test" -n "$N" -c "$c" -P "$P" -d "$d" -r 100000 --csv 2>"$WORK/bench.err") || {
    echo "load tool failed against port $port: $(cat "$WORK/bench.err")" >&2; exit 1; }
  after=$(cpu_ticks "$pid")
  echo "$csv" | awk -F'"' -v t="$before" -v u="$after" -v hz="$CLK_TCK" -v n="$N" \
    'NR==2 {printf "%s %s %s %.3f\n", $4, $10, $14, (u - t) / hz / n * 1e6}' >"$WORK/run"
  [ -s "$WORK/run" ] || { echo "no CSV result from the load tool against port $port: $csv" >&2; exit 1; }
  cat "$WORK/run"
}

run_mode() {
  local mode=$1
  start_servers "$mode"
  echo
  echo "### $mode mode — tool: $TOOL, -n $N, medians of $ROUNDS alternating rounds (A=kvserver, B=redis)"
  echo
  echo "| test | -c | -P | -d | kvserver req/s | redis req/s | A/B | kvserver p50 ms | redis p50 ms | kvserver p99 ms | redis p99 ms | kvserver CPU s/M req | redis CPU s/M req |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for test in $TESTS; do for c in $CLIENTS; do for P in $PIPELINES; do for d in $SIZES; do
    : >"$WORK/a"; : >"$WORK/b"
    for _ in $(seq 1 "$ROUNDS"); do
      one_run "$KV_PORT" "$KV_PID" "$test" "$c" "$P" "$d" >>"$WORK/a"
      one_run "$REDIS_PORT" "$REDIS_PID" "$test" "$c" "$P" "$d" >>"$WORK/b"
    done
    ar=$(awk '{print $1}' "$WORK/a" | median); br=$(awk '{print $1}' "$WORK/b" | median)
    al=$(awk '{print $2}' "$WORK/a" | median); bl=$(awk '{print $2}' "$WORK/b" | median)
    a9=$(awk '{print $3}' "$WORK/a" | median); b9=$(awk '{print $3}' "$WORK/b" | median)
    ac=$(awk '{print $4}' "$WORK/a" | median); bc=$(awk '{print $4}' "$WORK/b" | median)
    if [ -n "${RAW:-}" ]; then
      sed "s/^/$mode ${test} $c $P $d kvserver /" "$WORK/a" >>"$RAW"
      sed "s/^/$mode ${test} $c $P $d redis /" "$WORK/b" >>"$RAW"
    fi
    ratio=$(awk -v a="$ar" -v b="$br" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    echo "| ${test^^} | $c | $P | $d | $ar | $br | $ratio | $al | $bl | $a9 | $b9 | $ac | $bc |"
  done; done; done; done
  stop_servers
}

case "$MODE" in
  memory|aof|always) run_mode "$MODE" ;;
  both) run_mode memory; run_mode aof ;;
  all) run_mode memory; run_mode aof; run_mode always ;;
  *) echo "MODE must be memory, aof, always, both or all" >&2; exit 2 ;;
esac
