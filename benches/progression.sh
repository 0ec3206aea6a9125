#!/usr/bin/env bash
# benches/progression.sh — the seed's progression: one global lock
# (kvserver --shards 1) vs 16 shards (default) vs batching (-P 16: consecutive
# commands of a read run under one lock acquisition per shard), in-memory
# (--no-wal), same load tool, alternating rounds, medians; server CPU from
# /proc/PID/stat. Servers are stopped on exit (trap).
#
# Usage: cargo build --release && benches/progression.sh
# Env:   TOOL=redis-benchmark|kvbench (default redis-benchmark), N=100000,
#        ROUNDS=3, C=50, PIPELINES="1 16", TESTS="set get"
set -euo pipefail
cd "$(dirname "$0")/.."
TOOL=${TOOL:-redis-benchmark}
N=${N:-100000}
ROUNDS=${ROUNDS:-3}
C=${C:-50}
PIPELINES=${PIPELINES:-"1 16"}
TESTS=${TESTS:-"set get"}
P1=${P1_PORT:-16386}
P16=${P16_PORT:-16387}
CLK_TCK=$(getconf CLK_TCK)
case "$TOOL" in
  kvbench) BENCH=(target/release/kvbench) ;;
  redis-benchmark) BENCH=(redis-benchmark) ;;
  *) echo "TOOL must be kvbench or redis-benchmark" >&2; exit 2 ;;
esac
# shellcheck source=benches/lib.sh
source benches/lib.sh
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

target/release/kvserver --no-wal --shards 1 --port "$P1" --dir "$WORK/a" >"$WORK/a.log" 2>&1 & A=$!; PIDS+=("$A")
target/release/kvserver --no-wal --port "$P16" --dir "$WORK/b" >"$WORK/b.log" 2>&1 & B=$!; PIDS+=("$B")
wait_ping "$P1"; wait_ping "$P16"

one_run() { # port pid test P -> "rps p50 p99 cpu_us_per_req"
  local before after csv
  before=$(cpu_ticks "$2")
  csv=$(timeout 300 "${BENCH[@]}" -p "$1" -t "$3" -n "$N" -c "$C" -P "$4" -d 3 -r 100000 --csv)
  after=$(cpu_ticks "$2")
  echo "$csv" | awk -F'"' -v t="$before" -v u="$after" -v hz="$CLK_TCK" -v n="$N" \
    'NR==2 {printf "%s %s %s %.3f\n", $4, $10, $14, (u - t) / hz / n * 1e6}'
}

echo "tool: $TOOL, -c $C, -d 3, -r 100000, -n $N, medians of $ROUNDS alternating rounds"
echo
echo "| test | -P | shards | req/s | p50 ms | p99 ms | server CPU µs/req |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for test in $TESTS; do for P in $PIPELINES; do
  : >"$WORK/ra"; : >"$WORK/rb"
  for _ in $(seq 1 "$ROUNDS"); do
    one_run "$P1" "$A" "$test" "$P" >>"$WORK/ra"
    one_run "$P16" "$B" "$test" "$P" >>"$WORK/rb"
  done
  for s in a b; do
    f=$WORK/r$s; shards=$([ $s = a ] && echo 1 || echo 16)
    echo "| ${test^^} | $P | $shards | $(awk '{print $1}' "$f" | median) | $(awk '{print $2}' "$f" | median) | $(awk '{print $3}' "$f" | median) | $(awk '{print $4}' "$f" | median) |"
  done
done; done
