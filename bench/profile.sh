#!/usr/bin/env bash
# Where the time goes: the hot-JWT row of bench/load.sh (upstream nginx and the proxy on core 0,
# wrk -t1 -c64 on core 1), sampled by `perf record -F 1999 -g` for SECS seconds, for tollgate
# and for nginx proxy_pass in the same run. Prints each one's kernel vs user share and its top
# user-space symbols. Loopback only; every run is bounded by SECS.
#   SECS=6 TOP=25 bench/profile.sh   (CALLGRAPH="--call-graph dwarf,16384" for callers; ONLY_TOLLGATE=1;
#   PERF_OUT=dir keeps the perf.data files)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
SECS=${SECS:-6} TOP=${TOP:-25}
UP=127.0.0.1:18181 NGX=127.0.0.1:18183 TG=127.0.0.1:18180
for c in wrk nginx perf curl taskset; do
  command -v $c >/dev/null || { echo "needs $c (apt-get install wrk nginx-light linux-perf curl util-linux)" >&2; exit 1; }
done
cargo build --release -q
BIN=$PWD/target/release/tollgate
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

pinned_setup "$work" "$UP" "$NGX" "$TG" "$BIN"

profile() { # $1 label, $2 pid, wrk args… → share and top symbols
  local label=$1 pid=$2; shift 2
  taskset -c 1 wrk -t1 -c64 -d2s "$@" >/dev/null
  taskset -c 1 wrk -t1 -c64 -d"$((SECS + 2))s" "$@" > "$work/wrk.txt" &
  local w=$!
  sleep 1
  perf record -q -F 1999 ${CALLGRAPH:--g} -p "$pid" -o "$work/perf.data" -- sleep "$SECS" 2>/dev/null
  wait $w
  # PERF_OUT=dir keeps each profile's perf.data (named by the process) for `perf report -i`.
  [ -z "${PERF_OUT:-}" ] || cp "$work/perf.data" "$PERF_OUT/$(ps -o comm= -p "$pid").perf.data"
  echo "## $label: $(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt") req/s"
  perf report -i "$work/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
    awk '/\[k\]/ {k+=$1} /\[\.\]/ {u+=$1} END {printf "kernel %.0f %%, user %.0f %%\n", k, u}'
  echo "top user-space symbols (self):"
  perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9].*\[\.\]' |
    awk -v top="$TOP" 'NR > top {next} {l=$0; sub(/[ \t]+-[ \t]+-[ \t]*$/, "", l); sub(/^ +/, "", l); gsub(/ +/, " ", l); print "  " l}'
  echo
}
ngx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
profile "tollgate, hot JWT" "$tg" -H "Authorization: $TOKEN" "http://$TG/product/get?id=1"
[ -n "${ONLY_TOLLGATE:-}" ] || profile "nginx proxy_pass" "$ngx_worker" "http://$NGX/product/get?id=1"
