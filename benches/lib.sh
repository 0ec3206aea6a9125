# benches/lib.sh — shared by the benchmark scripts (source it, don't run it).
# Gives every script a private temp dir ($WORK), a list of server PIDs that
# are killed on exit ($PIDS, append with PIDS+=($!)), and wait_ping.

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# wait_ping PORT: returns once the server answers PING (10 s at most), else exits.
wait_ping() {
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  echo "no PONG on $1" >&2
  exit 1
}
