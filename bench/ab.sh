#!/usr/bin/env bash
# A/B of the plain proxy path between two commits: the same config, both binaries pinned to
# core 0 (one tokio worker each, as the affinity gives them), nginx as the upstream and wrk on
# core 1, rounds alternating which binary goes first. Prints each round and the median
# req/s of each with the ratio B ÷ A. Loopback only; every wrk run is bounded by DURATION.
#   bench/ab.sh <rev-A> [<rev-B, default: the work tree>]   (a rev may also be a binary's /path)
#   ROUNDS=6 DURATION=5s CONNS=32 ROUTE=jwt|open bench/ab.sh 4f378db
# TLS=1: the clients speak TLS 1.3 to the gateway (a self-signed P-256 certificate made here).
# SHARE=1: the upstream nginx on core 0 beside the gateway, as in bench/load.sh (the two then
# compete for one core, so how the gateway batches its work shows).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
A=${1:?usage: bench/ab.sh <rev-A> [<rev-B>]}
B=${2:-}
ROUNDS=${ROUNDS:-6} DURATION=${DURATION:-5s} CONNS=${CONNS:-32} ROUTE=${ROUTE:-jwt}
UP=127.0.0.1:18091 GW=127.0.0.1:18090

need=""
for c in wrk nginx curl taskset openssl; do command -v $c >/dev/null || need="$need $c"; done
if [ -n "$need" ]; then
  apt-get update -qq && apt-get install -y -qq $(sed 's/nginx/nginx-light/; s/taskset/util-linux/' <<<"$need")
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for w in a b; do [ ! -d "$work/$w" ] || git worktree remove --force "$work/$w"; done
  rm -rf "$work"
}
trap cleanup EXIT

build() { # $1 rev, /path of a binary or "" for the work tree, $2 name → prints the binary's path (kept in target/ab/)
  case "$1" in /*) echo "$1"; return;; esac
  if [ -z "$1" ]; then
    cargo build --release -q && echo "$PWD/target/release/tollgate"
    return
  fi
  local rev; rev=$(git rev-parse --short "$1")
  local bin="$PWD/target/ab/$rev/tollgate"
  if [ ! -x "$bin" ]; then
    git worktree add -q --detach "$work/$2" "$rev"
    (cd "$work/$2" && CARGO_TARGET_DIR="$work/target-$2" cargo build --release -q)
    mkdir -p "$(dirname "$bin")" && cp "$work/target-$2/release/tollgate" "$bin"
  fi
  echo "$bin"
}
echo "building A ($A) and B (${B:-work tree}) ..." >&2
BIN_A=$(build "$A" a)
BIN_B=$(build "$B" b)

nginx_upstream "$work" "$UP"
UPCORE=1
[ -z "${SHARE:-}" ] || UPCORE=0
taskset -c "$UPCORE" nginx -c "$work/upstream.conf" -p "$work" & pids+=($!)

tls="" scheme=http
if [ -n "${TLS:-}" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  tls=", tls: { cert: $work/cert.pem, key: $work/key.pem }" scheme=https
fi
gateway_yaml "$GW" "$tls" "$work/db" "$UP" > "$work/gw.yaml"

round() { # $1 binary → req/s
  rm -rf "$work"/db*
  TOLLGATE_LOG=warn taskset -c 0 "$1" run --config "$work/gw.yaml" & local pid=$!
  for _ in $(seq 100); do curl -sk -o /dev/null "$scheme://$GW/" && break; sleep 0.05; done
  local args=("$scheme://$GW/open/get?id=1")
  if [ "$ROUTE" = jwt ]; then
    local token
    token=$(curl -sk -X POST "$scheme://$GW/oauth/token/get" -H 'content-type: application/json' \
      -d '{"app_id":"bench","app_secret":"bench-secret"}' | sed -E 's/.*"accessToken":"([^"]*)".*/\1/')
    args=(-H "Authorization: $token" "$scheme://$GW/product/get?id=1")
  fi
  # A short warm-up (connections, hot map), then the measured run.
  taskset -c 1 wrk -t1 -c"$CONNS" -d1s "${args[@]}" >/dev/null
  # The gateway's own CPU time per request (user + system, from /proc) is steadier than
  # req/s on a machine whose neighbours steal cycles.
  local t0; t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  local out; out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" "${args[@]}")
  local t1; t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers in a run:" >&2; echo "$out" >&2; exit 1; fi
  local n; n=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")" -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="$n" \
    'BEGIN { printf "%s %.2f\n", rps, t / hz * 1e6 / n }'
}

ra=() rb=() ca=() cb=()
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then a=$(round "$BIN_A"); b=$(round "$BIN_B"); order="A,B"
  else b=$(round "$BIN_B"); a=$(round "$BIN_A"); order="B,A"; fi
  ra+=("${a% *}") rb+=("${b% *}") ca+=("${a#* }") cb+=("${b#* }")
  echo "round $r ($order): A ${a% *} req/s ${a#* } µs CPU/req, B ${b% *} req/s ${b#* } µs CPU/req" >&2
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ma=$(median "${ra[@]}") mb=$(median "${rb[@]}") mca=$(median "${ca[@]}") mcb=$(median "${cb[@]}")
echo "route=$ROUTE over $scheme, wrk -t1 -c$CONNS -d$DURATION, $ROUNDS rounds alternating, tollgate on core 0, nginx on core $UPCORE, wrk on core 1"
echo "A $A: median $ma req/s, $mca µs CPU/request"
echo "B ${B:-work tree}: median $mb req/s, $mcb µs CPU/request"
awk -v a="$ma" -v b="$mb" -v x="$mca" -v y="$mcb" 'BEGIN { printf "req/s B / A = %.3f; CPU per request B / A = %.3f\n", b / a, y / x }'
