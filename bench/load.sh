#!/usr/bin/env bash
# Whole-request throughput on loopback, all runs in one go so the ratios compare like with
# like: nginx as the upstream, hit directly (baseline) and through tollgate with no auth,
# with a JWT, with a JWT over TLS, and with the JSON access log on. Loopback only; every
# wrk run is bounded by DURATION.
#   DURATION=10s CONNS=32 bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
UP=127.0.0.1:18081 PLAIN=127.0.0.1:18080 TLSA=127.0.0.1:18443

need=""
command -v wrk >/dev/null || need="$need wrk"
command -v nginx >/dev/null || need="$need nginx-light"
command -v openssl >/dev/null || need="$need openssl"
command -v curl >/dev/null || need="$need curl"
if [ -n "$need" ]; then apt-get update -qq && apt-get install -y -qq $need; fi
cargo build --release -q
BIN=$PWD/target/release/tollgate

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 4096; }
http { access_log off;
  server { listen $UP;
    location / { default_type text/plain; return 200 "Ok!You successfully caught me. The Id is 1"; } }
  # A reference proxy: nginx proxy_pass with upstream keep-alive, no auth.
  upstream origin { server $UP; keepalive 64; }
  server { listen 127.0.0.1:18083;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGINX
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
sleep 0.3
kill -0 "${pids[0]}" 2>/dev/null || { echo "nginx did not start (ports 18080-18083, 18443 must be free):" >&2; cat "$work/nginx.err" >&2; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

gateway_config() { # $1 address, $2 tls block
  cat <<YAML
listen: { address: "$1" $2 }
store: { path: $work/db-${1##*:} }
apps: [{ id: bench, secret: bench-secret, oauth_scopes: [read] }]
dialects: { oauth: {} }
upstreams: { product: { targets: ["http://$UP"] } }
routes:
  - { path: /open/get, upstream: product, auth: none }
  - { path: /product/get, upstream: product, auth: bearer, require: { oauth_scope: read } }
YAML
}
gateway_config "$PLAIN" "" > "$work/plain.yaml"
gateway_config "$TLSA" ", tls: { cert: $work/cert.pem, key: $work/key.pem }" > "$work/tls.yaml"
# The JSON access log is measured separately; the main runs keep warnings only.
TOLLGATE_LOG=warn,rustls=error "$BIN" run --config "$work/plain.yaml" & pids+=($!)
TOLLGATE_LOG=warn,rustls=error "$BIN" run --config "$work/tls.yaml" & pids+=($!)
sed "s/$PLAIN/127.0.0.1:18082/; s/db-18080/db-18082/" "$work/plain.yaml" > "$work/logged.yaml"
"$BIN" run --config "$work/logged.yaml" --log-format json 2>/dev/null & pids+=($!)
for a in "$UP" "$PLAIN" 127.0.0.1:18082; do
  for _ in $(seq 50); do curl -s -o /dev/null "http://$a/" && break; sleep 0.1; done
done
for _ in $(seq 50); do curl -sk -o /dev/null "https://$TLSA/" && break; sleep 0.1; done

TOKEN=$(curl -s -X POST "http://$PLAIN/oauth/token/get" -H 'content-type: application/json' \
  -d '{"app_id":"bench","app_secret":"bench-secret"}' | sed -E 's/.*"accessToken":"([^"]*)".*/\1/')
case "$TOKEN" in Bearer\ ey*) ;; *) echo "no token: $TOKEN" >&2; exit 1;; esac

run() { # $1 label, rest: wrk args
  local label=$1; shift
  local out; out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$@")
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

results=$(
  run "direct to nginx (baseline)" "http://$UP/product/get?id=1"
  run "nginx proxy_pass (reference)" "http://127.0.0.1:18083/product/get?id=1"
  run "tollgate, auth: none" "http://$PLAIN/open/get?id=1"
  run "tollgate, JWT (hot map)" -H "Authorization: $TOKEN" "http://$PLAIN/product/get?id=1"
  run "tollgate, JWT over TLS" -H "Authorization: $TOKEN" "https://$TLSA/product/get?id=1"
  run "tollgate, JWT, JSON access log" -H "Authorization: $TOKEN" "http://127.0.0.1:18082/product/get?id=1"
)
base=$(head -1 <<<"$results" | cut -f2)
echo "wrk -t1 -c$CONNS -d$DURATION on $(nproc) cores ($(uname -m)); ratio = req/s ÷ direct req/s, same run"
echo
printf '| %-32s | %10s | %6s | %8s | %8s | %s |\n' setup req/s ratio p50 p99 non-2xx
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" "------------" "--------" "----------" "----------" "---------"
while IFS=$'\t' read -r label rps p50 p99 non2xx; do
  ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
  printf '| %-32s | %10s | %6s | %8s | %8s | %s |\n' "$label" "$rps" "$ratio" "$p50" "$p99" "$non2xx"
done <<<"$results"
