#!/usr/bin/env bash
# The floor under tollgate on hyper (issue 12): nginx proxy_pass, tollgate (hot JWT) and the
# bench/floor proxy in several set-ups, with bench/load.sh's pinning (upstream nginx and every
# proxy on core 0, `wrk -t1 -c64` alone on core 1), req/s and the proxy's user / kernel CPU per
# request read from /proc. Loopback only; every run is bounded by SECS.
#   SECS=4 ROUNDS=2 bench/floor.sh      (VARIANTS="base AUTO,GRACE,HDRS" to pick set-ups;
#   BIN=path/to/tollgate to measure a build without rebuilding)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
SECS=${SECS:-4} ROUNDS=${ROUNDS:-2}
VARIANTS=${VARIANTS:-base AUTO AUTO,GRACE HDRS AUTO,GRACE,HDRS,BIG STICKY}
pinned_start
(cd bench/floor && CARGO_TARGET_DIR=../../target/floor cargo build --release -q)
FLOOR=$PWD/target/floor/release/floor
declare -A floor
port=18300
for v in $VARIANTS; do
  envs=(); for e in ${v//,/ }; do [ "$e" = base ] || envs+=("$e=1"); done
  env "${envs[@]}" taskset -c 0 "$FLOOR" 127.0.0.1:$port "$UP" & floor[$v]="$! $port"; pids+=($!)
  port=$((port + 1))
done
sleep 0.3
measure() { # $1 label, $2 pid, wrk args… → one row
  local label=$1 pid=$2; shift 2
  taskset -c 1 wrk -t1 -c64 -d2s "$@" >/dev/null
  local u0 s0 u1 s1
  read -r u0 s0 < <(ticks "$pid")
  taskset -c 1 wrk -t1 -c64 -d"${SECS}s" "$@" > "$work/wrk.txt"
  read -r u1 s1 < <(ticks "$pid")
  awk -v l="$label" -v hz="$(getconf CLK_TCK)" -v n="$(awk '/requests in/ {print $1}' "$work/wrk.txt")" \
    -v r="$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")" -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
    'BEGIN { k = 1e6 / hz / n; printf "| %s | %.0f | %.2f | %.2f |\n", l, r, u * k, s * k }'
}
echo "| proxy (round) | req/s | user µs/req | kernel µs/req |"
echo "|---|---:|---:|---:|"
for r in $(seq "$ROUNDS"); do
  rows=(nginx tollgate $VARIANTS)
  [ $((r % 2)) -eq 1 ] || rows=($(printf '%s\n' "${rows[@]}" | tac))
  for row in "${rows[@]}"; do
    case $row in
      nginx) measure "nginx proxy_pass ($r)" "$ngw" "http://$NGX/product/get?id=1" ;;
      tollgate) measure "tollgate, hot JWT ($r)" "$tg" -H "Authorization: $TOKEN" "http://$TG/product/get?id=1" ;;
      *) set -- ${floor[$row]}; measure "floor $row ($r)" "$1" -H "Authorization: $TOKEN" "http://127.0.0.1:$2/product/get?id=1" ;;
    esac
  done
done
