#!/usr/bin/env bash
# CPU per request, split into user and kernel time, and context switches per request (the
# proxy going to sleep; the proxy preempted, by the upstream it just woke on its core), for
# tollgate (hot JWT) and nginx proxy_pass, with bench/load.sh's pinning: the upstream nginx
# and the proxy under test on core 0, `wrk -t1 -c64` alone on core 1. Read from /proc before
# and after each measured run. Loopback only; every run is bounded by SECS.
#   SECS=5 ROUNDS=3 bench/cost.sh      (BIN=path/to/tollgate to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
SECS=${SECS:-5} ROUNDS=${ROUNDS:-3}
pinned_start
upw=$(pgrep -P "$(cat "$work/upstream.pid")" | head -1)

switches() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {i += $2} END {print v, i}'; }
measure() { # $1 label, $2 proxy pid, wrk args… → one line
  local label=$1 pid=$2; shift 2
  taskset -c 1 wrk -t1 -c64 -d2s "$@" >/dev/null
  local u0 s0 bu0 bs0 v0 i0 u1 s1 bu1 bs1 v1 i1
  read -r u0 s0 < <(ticks "$pid"); read -r bu0 bs0 < <(ticks "$upw"); read -r v0 i0 < <(switches "$pid")
  taskset -c 1 wrk -t1 -c64 -d"${SECS}s" "$@" > "$work/wrk.txt"
  read -r u1 s1 < <(ticks "$pid"); read -r bu1 bs1 < <(ticks "$upw"); read -r v1 i1 < <(switches "$pid")
  awk -v l="$label" -v hz="$(getconf CLK_TCK)" \
    -v n="$(awk '/requests in/ {print $1}' "$work/wrk.txt")" \
    -v r="$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")" \
    -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v bu=$((bu1 - bu0)) -v bs=$((bs1 - bs0)) -v v=$((v1 - v0)) -v i=$((i1 - i0)) \
    'BEGIN { k = 1e6 / hz / n; printf "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", l, r, u * k, s * k, (u + s) * k, (bu + bs) * k, v / n, i / n }'
}
echo "| proxy (round) | req/s | user µs/req | kernel µs/req | proxy µs/req | upstream µs/req | sleeps/req | preempted/req |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    measure "tollgate, hot JWT ($r)" "$tg" -H "Authorization: $TOKEN" "http://$TG/product/get?id=1"
    measure "nginx proxy_pass ($r)" "$ngw" "http://$NGX/product/get?id=1"
  else
    measure "nginx proxy_pass ($r)" "$ngw" "http://$NGX/product/get?id=1"
    measure "tollgate, hot JWT ($r)" "$tg" -H "Authorization: $TOKEN" "http://$TG/product/get?id=1"
  fi
done
