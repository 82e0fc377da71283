#!/usr/bin/env bash
# What the access log costs: a logged (`--log-format json`, to a file) and an unlogged tollgate
# side by side with bench/load.sh's pinning (upstream nginx and both gateways on core 0,
# `wrk -t1 -c64` alone on core 1), 3 alternating rounds of 5 s after a 2 s warm-up each, the
# hot-JWT route. Prints each round's req/s and on ÷ off, and how many lines the log holds.
#   bench/log_cost.sh      (BIN=path/to/tollgate to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
pinned_start bc
TGL=127.0.0.1:18284
gateway_yaml "$TGL" "" "$work/dbl" "$UP" > "$work/l.yaml"
taskset -c 0 "$BIN" run --config $work/l.yaml --log-format json 2>$work/access.log & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://$TGL/" && break; sleep 0.05; done
TL=$(curl -s -X POST "http://$TGL/oauth/token/get" -H 'content-type: application/json' -d '{"app_id":"bench","app_secret":"bench-secret"}' | sed -E 's/.*"accessToken":"([^"]*)".*/\1/')
r() { taskset -c 1 wrk -t1 -c64 -d2s "$@" >/dev/null; taskset -c 1 wrk -t1 -c64 -d5s "$@" | awk '/Requests\/sec/ {printf "%.0f", $2}'; }
for i in 1 2 3; do
 if [ $((i%2)) = 1 ]; then a=$(r -H "Authorization: $TOKEN" http://$TG/product/get?id=1); b=$(r -H "Authorization: $TL" http://$TGL/product/get?id=1)
 else b=$(r -H "Authorization: $TL" http://$TGL/product/get?id=1); a=$(r -H "Authorization: $TOKEN" http://$TG/product/get?id=1); fi
 echo "round $i: off $a on $b ratio $(echo "scale=3; $b/$a" | bc)"
done
echo "lines: $(wc -l < $work/access.log)"; tail -1 $work/access.log | cut -c1-120
