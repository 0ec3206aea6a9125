#!/usr/bin/env bash
# benches/latency.sh — latency percentiles, kvserver (--no-wal) vs redis-server
# (--save '' --appendonly no). For each pipeline depth: ROUNDS alternating
# kvbench --json runs per server (set,get), then a markdown table of the median
# of each percentile (min/p50/p95/p99/p99.9/max) and req/s; then one
# kvbench --compare run (its own alternating rounds) that draws the SVG plot
# docs/img/latency-c<C>-p<P>.svg (one line per test per server).
#
# Usage: cargo build --release && benches/latency.sh
# Env:   N=100000 ROUNDS=3 C=50 PIPELINES="1 16"
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
ROUNDS=${ROUNDS:-3}
C=${C:-50}
PIPELINES=${PIPELINES:-"1 16"}
KV_PORT=${KV_PORT:-16394}
REDIS_PORT=${REDIS_PORT:-16395}
# shellcheck source=benches/lib.sh
source benches/lib.sh
target/release/kvserver --no-wal --port "$KV_PORT" --dir "$WORK/kv" >"$WORK/kv.log" 2>&1 & PIDS+=($!)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save '' --appendonly no >"$WORK/redis.log" 2>&1 & PIDS+=($!)
wait_ping "$KV_PORT"; wait_ping "$REDIS_PORT"
mkdir -p docs/img
for P in $PIPELINES; do
  : >"$WORK/runs.jsonl"
  for _ in $(seq 1 "$ROUNDS"); do
    for port in "$KV_PORT" "$REDIS_PORT"; do
      timeout 300 target/release/kvbench -p "$port" -t set,get -c "$C" -P "$P" -n "$N" -r 100000 --json |
        tr -d '\n' >>"$WORK/runs.jsonl"
      echo >>"$WORK/runs.jsonl"
    done
  done
  echo "#### -c $C -P $P, kvbench, -n $N, -r 100000, medians of $ROUNDS alternating runs (ms)"
  echo
  python3 - "$WORK/runs.jsonl" "$KV_PORT" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = ["min", "p50", "p95", "p99", "p999", "max"]
print("| test | server | req/s | " + " | ".join(k.replace("p999", "p99.9") for k in keys) + " |")
print("|---|---|---:|" + "---:|" * len(keys))
for test in ["SET", "GET"]:
    for name, is_kv in [("kvserver", True), ("redis", False)]:
        rs = [t for r in runs if r["target"].endswith(":" + sys.argv[2]) == is_kv
              for t in r["tests"] if t["test"] == test]
        med = lambda f: statistics.median(f(t) for t in rs)
        cells = [f'{med(lambda t: t["rps"]):.0f}'] + [f'{med(lambda t, k=k: t["latency_ms"][k]):.3f}' for k in keys]
        print(f"| {test} | {name} | " + " | ".join(cells) + " |")
PY
  echo
  timeout 600 target/release/kvbench -p "$KV_PORT" --compare "127.0.0.1:$REDIS_PORT" \
    -t set,get -c "$C" -P "$P" -n "$N" -r 100000 --rounds "$ROUNDS" \
    --plot "docs/img/latency-c${C}-p${P}.svg" --csv >"$WORK/compare.csv"
  echo "plot: docs/img/latency-c${C}-p${P}.svg"
  echo
done
