#!/usr/bin/env bash
# Whole-request throughput and light-load latency on loopback, every side given the same CPU:
# the upstream nginx and the proxy under test share core 0 (`taskset -c 0`), one worker each
# (tollgate takes one because its affinity is one core), access logs off; wrk runs alone on
# core 1. Each row is measured ROUNDS times, the rows' order reversed every other round, each
# measurement after a warm-up; the table gives the median and the spread (min–max).
#   ROUNDS=3 DURATION=10s CONNS=64 bench/load.sh
# Loopback only; every wrk run is bounded by DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10s} CONNS=${CONNS:-64} WARMUP=${WARMUP:-2s}
UP=127.0.0.1:18081 NGX=127.0.0.1:18083 NGXS=127.0.0.1:18444 HAP=127.0.0.1:18084 NGXH=127.0.0.1:18085
TG=127.0.0.1:18080 TGS=127.0.0.1:18443 TGL=127.0.0.1:18082

need=""
for c in wrk nginx haproxy openssl curl taskset; do command -v $c >/dev/null || need="$need $c"; done
if [ -n "$need" ]; then
  apt-get update -qq
  apt-get install -y -qq $(sed 's/nginx/nginx-light/; s/taskset/util-linux/' <<<"$need")
fi
cargo build --release -q
BIN=$PWD/target/release/tollgate

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# The upstream, and nginx as the reference proxy (plain and TLS 1.3 with the same certificate),
# one worker, upstream keep-alive.
# The upstream and the nginx proxy are two nginx instances (one worker each), so nginx
# proxy_pass, like every other proxy here, hands each request to another process.
nginx_upstream "$work" "$UP"
nginx_proxy "$work" "$UP" "$NGX" "$NGXS" "$work/cert.pem" "$work/key.pem" "$NGXH"
taskset -c 0 nginx -c "$work/upstream.conf" -p "$work" & pids+=($!)
taskset -c 0 nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)

cat > "$work/haproxy.cfg" <<HAPROXY
global
  nbthread 1
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind $HAP
  default_backend be
backend be
  server up $UP
HAPROXY
taskset -c 0 haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 & pids+=($!)

gateway_yaml "$TG" "" "$work/db-plain" "$UP" > "$work/plain.yaml"
gateway_yaml "$TGS" ", tls: { cert: $work/cert.pem, key: $work/key.pem }" "$work/db-tls" "$UP" > "$work/tls.yaml"
gateway_yaml "$TGL" "" "$work/db-logged" "$UP" > "$work/logged.yaml"
TOLLGATE_LOG=warn,rustls=error taskset -c 0 "$BIN" run --config "$work/plain.yaml" 2>"$work/plain.log" & pids+=($!)
TOLLGATE_LOG=warn,rustls=error taskset -c 0 "$BIN" run --config "$work/tls.yaml" 2>"$work/tls.log" & pids+=($!)
# The default: one JSON access-log line per request, to a file as a service manager would.
taskset -c 0 "$BIN" run --config "$work/logged.yaml" --log-format json 2>"$work/access.log" & pids+=($!)
for a in "$UP" "$NGX" "$NGXH" "$HAP" "$TG" "$TGL"; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://$a/" && break; sleep 0.05; done
done
for a in "$TGS" "$NGXS"; do
  for _ in $(seq 100); do curl -sk -o /dev/null "https://$a/" && break; sleep 0.05; done
done

token() { # $1 base URL (a few tries: the first request may race the listener's start)
  local t
  for _ in 1 2 3 4 5; do
    t=$(curl -sk -X POST "$1/oauth/token/get" -H 'content-type: application/json' \
      -d '{"app_id":"bench","app_secret":"bench-secret"}' | sed -E 's/.*"accessToken":"([^"]*)".*/\1/')
    case "$t" in Bearer\ ey*) printf %s "$t"; return ;; esac
    sleep 0.2
  done
  printf %s "$t"
}
TOKEN=$(token "http://$TG") TOKEN_S=$(token "https://$TGS") TOKEN_L=$(token "http://$TGL")
case "$TOKEN" in Bearer\ ey*) ;; *) echo "no token: $TOKEN" >&2; exit 1;; esac
# 1 000 tokens, each used in turn (all cached after the first pass of the warm-up).
for _ in $(seq 1000); do token "http://$TG"; echo; done > "$work/tokens"
if grep -qv '^Bearer ey' "$work/tokens"; then echo "a token request failed:" >&2; grep -v '^Bearer ey' "$work/tokens" | head -3 >&2; exit 1; fi
cat > "$work/rotate.lua" <<LUA
local tokens = {}
for line in io.lines("$work/tokens") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/product/get?id=1", { ["Authorization"] = tokens[i] })
end
LUA
# Light load: 4 connections, each waiting 4 ms after every answer (about 1 000 req/s).
echo 'delay = function() return 4 end' > "$work/think.lua"

# Rows: label | wrk arguments. "light" rows run at the light load and report latency.
rows=(
  "direct to upstream nginx|http://$UP/product/get?id=1"
  "nginx proxy_pass|http://$NGX/product/get?id=1"
  "nginx proxy_pass + tollgate's header work|-H|Authorization: $TOKEN|http://$NGXH/product/get?id=1"
  "HAProxy, 1 thread|http://$HAP/product/get?id=1"
  "tollgate, hot JWT|-H|Authorization: $TOKEN|http://$TG/product/get?id=1"
  "tollgate, 1 000 rotating JWTs|-s|$work/rotate.lua|http://$TG/product/get?id=1"
  "tollgate, hot JWT, access log on|-H|Authorization: $TOKEN_L|http://$TGL/product/get?id=1"
  "nginx ssl + proxy_pass (TLS 1.3)|https://$NGXS/product/get?id=1"
  "tollgate, hot JWT, https (TLS 1.3)|-H|Authorization: $TOKEN_S|https://$TGS/product/get?id=1"
  "light: direct to upstream nginx|-s|$work/think.lua|http://$UP/product/get?id=1"
  "light: nginx proxy_pass|-s|$work/think.lua|http://$NGX/product/get?id=1"
  "light: tollgate, hot JWT|-s|$work/think.lua|-H|Authorization: $TOKEN|http://$TG/product/get?id=1"
)

measure() { # $1 row → "rps p50 p99"
  local IFS='|'; read -r -a f <<<"$1"; local args=("${f[@]:1}")
  local conns=$CONNS
  [[ ${f[0]} == light:* ]] && conns=4
  taskset -c 1 wrk -t1 -c"$conns" -d"$WARMUP" "${args[@]}" >/dev/null
  local out; out=$(taskset -c 1 wrk -t1 -c"$conns" -d"$DURATION" --latency "${args[@]}")
  if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers for ${f[0]}:" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print r, p50, p99}' <<<"$out"
}

declare -A got
for r in $(seq "$ROUNDS"); do
  order=("${rows[@]}")
  if [ $((r % 2)) -eq 0 ]; then
    order=(); for ((i=${#rows[@]}-1; i>=0; i--)); do order+=("${rows[$i]}"); done
  fi
  for row in "${order[@]}"; do
    label=${row%%|*}
    m=$(measure "$row")
    got[$label]+="$m;"
    echo "round $r: $label: $m" >&2
  done
done

# Median and spread of a column over the rounds; latencies are normalised to ms.
stat() { # $1 "a b c;a b c;" $2 column (1 rps, 2 p50, 3 p99) → "median min max"
  tr ';' '\n' <<<"$1" | awk -v c="$2" 'NF {v=$c; if (v ~ /us$/) v=v/1000; else if (v ~ /ms$/) v=v+0; else if (v ~ /s$/) v=v*1000; print v}' |
    sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)], v[1], v[NR]}'
}
ref=$(stat "${got[nginx proxy_pass]}" 1 | cut -d' ' -f1)
refs=$(stat "${got[nginx ssl + proxy_pass (TLS 1.3)]}" 1 | cut -d' ' -f1)
hot=$(stat "${got[tollgate, hot JWT]}" 1 | cut -d' ' -f1)
echo "wrk -t1 -c$CONNS -d$DURATION (light rows: -c4, 4 ms think time), $ROUNDS rounds, order alternating;"
echo "upstream nginx and the proxy under test on core 0, wrk on core 1; $(nproc) cores, $(uname -m)"
echo
echo "| setup | req/s (median) | min–max | × reference | p50 ms | p99 ms |"
echo "|---|---:|---:|---:|---:|---:|"
for row in "${rows[@]}"; do
  label=${row%%|*}
  read -r rps lo hi <<<"$(stat "${got[$label]}" 1)"
  p50=$(stat "${got[$label]}" 2 | cut -d' ' -f1) p99=$(stat "${got[$label]}" 3 | cut -d' ' -f1)
  case "$label" in
    light:*|direct*) x="—" ;;
    *https*|*ssl*) x=$(awk -v a="$rps" -v b="$refs" 'BEGIN { printf "%.2f", a / b }') ;;
    *) x=$(awk -v a="$rps" -v b="$ref" 'BEGIN { printf "%.2f", a / b }') ;;
  esac
  printf '| %s | %.0f | %.0f–%.0f | %s | %.2f | %.2f |\n' "$label" "$rps" "$lo" "$hi" "$x" "$p50" "$p99"
done
rot=$(stat "${got[tollgate, 1 000 rotating JWTs]}" 1 | cut -d' ' -f1)
logged=$(stat "${got[tollgate, hot JWT, access log on]}" 1 | cut -d' ' -f1)
echo
awk -v r="$rot" -v h="$hot" -v l="$logged" 'BEGIN {
  printf "rotating ÷ hot = %.2f; access log on ÷ off = %.2f\n", r / h, l / h }'
