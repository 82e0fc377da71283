# Sourced by the bench scripts: the gateway config they all measure.
# gateway_yaml ADDRESS "EXTRA LISTEN KEYS" STORE_PATH UPSTREAM
gateway_yaml() {
  cat <<YAML
listen: { address: "$1" $2 }
store: { path: $3 }
apps: [{ id: bench, secret: bench-secret, oauth_scopes: [read] }]
dialects: { oauth: {} }
upstreams: { product: { targets: ["http://$4"] } }
routes:
  - { path: /open/get, upstream: product, auth: none }
  - { path: /product/get, upstream: product, auth: bearer, require: { oauth_scope: read } }
# The scripts issue their tokens from one address, faster than a client should.
limits: { token_rate: { per_ip: 100000/s, per_ip_burst: 100000, per_app: 100000/s, per_app_burst: 100000 } }
YAML
}

# nginx_upstream DIR ADDRESS: the upstream every bench script proxies to (one worker, the
# demo product's answer), as DIR/upstream.conf.
nginx_upstream() {
  cat > "$1/upstream.conf" <<NGINX
worker_processes 1; daemon off; pid $1/upstream.pid; error_log $1/upstream.err;
events { worker_connections 4096; }
http { access_log off;
  server { listen $2;
    location / { default_type text/plain; return 200 "Ok!You successfully caught me. The Id is 1"; } } }
NGINX
}

# nginx_proxy DIR UPSTREAM PLAIN [TLS CERT KEY [HEADERS]]: nginx as the reference proxy, one
# worker, 64 kept upstream connections; with TLS also a TLS 1.3 listener; with HEADERS also a
# plain listener that does the header work tollgate does on every request (X-Forwarded-For,
# -Proto, -Host and X-Request-Id set upstream, the credential removed, the request id
# returned). As DIR/nginx.conf.
nginx_proxy() {
  local pass='location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }'
  local tls="" headers=""
  if [ -n "${4:-}" ]; then
    tls="server { listen $4 ssl; ssl_certificate $5; ssl_certificate_key $6; ssl_protocols TLSv1.3; $pass }"
  fi
  if [ -n "${7:-}" ]; then
    headers="server { listen $7; location / { proxy_pass http://origin; proxy_http_version 1.1;
      proxy_set_header Connection \"\"; proxy_set_header Authorization \"\";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme; proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Request-Id \$request_id; add_header X-Request-Id \$request_id; } }"
  fi
  cat > "$1/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $1/nginx.pid; error_log $1/nginx.err;
events { worker_connections 4096; }
http { access_log off;
  upstream origin { server $2; keepalive 64; }
  server { listen $3; $pass }
  $tls
  $headers }
NGINX
}

# pinned_setup DIR UPSTREAM NGINX_PROXY TOLLGATE BIN: the pinning of load.sh for one
# comparison: upstream nginx, nginx proxy_pass and tollgate (its log at DIR/gw.log) all on
# core 0, each answering before it returns. Sets `tg` (tollgate's pid) and `TOKEN` (a bearer
# for the JWT route), and adds the pids to the caller's `pids` for its cleanup.
pinned_setup() {
  local dir=$1 up=$2 ngx=$3 gw=$4 bin=$5
  nginx_upstream "$dir" "$up"
  nginx_proxy "$dir" "$up" "$ngx"
  taskset -c 0 nginx -c "$dir/upstream.conf" -p "$dir" & pids+=($!)
  taskset -c 0 nginx -c "$dir/nginx.conf" -p "$dir" & pids+=($!)
  gateway_yaml "$gw" "" "$dir/db" "$up" > "$dir/gw.yaml"
  TOLLGATE_LOG=warn taskset -c 0 "$bin" run --config "$dir/gw.yaml" 2>"$dir/gw.log" & tg=$!
  pids+=($tg)
  for a in "$up" "$ngx" "$gw"; do
    for _ in $(seq 100); do curl -s -o /dev/null "http://$a/" && break; sleep 0.05; done
  done
  TOKEN=$(curl -s -X POST "http://$gw/oauth/token/get" -H 'content-type: application/json' \
    -d '{"app_id":"bench","app_secret":"bench-secret"}' | sed -E 's/.*"accessToken":"([^"]*)".*/\1/')
}

# pinned_start [TOOL…]: how cost.sh, floor.sh and log_cost.sh begin. Checks wrk, nginx, curl,
# taskset and the TOOLs, builds this checkout's release binary unless BIN names one, makes a
# work dir removed (with every process in `pids`) on exit, and runs pinned_setup on the usual
# ports. Sets UP, NGX, TG, BIN, work, pids, tg, TOKEN and ngw (the nginx proxy's worker pid).
pinned_start() {
  for c in wrk nginx curl taskset "$@"; do
    command -v "$c" >/dev/null || { echo "needs $c (apt-get install wrk nginx-light curl util-linux $*)" >&2; exit 1; }
  done
  if [ -z "${BIN:-}" ]; then cargo build --release -q; BIN=$PWD/target/release/tollgate; fi
  UP=127.0.0.1:18281 NGX=127.0.0.1:18283 TG=127.0.0.1:18280
  work=$(mktemp -d)
  pids=()
  trap pinned_cleanup EXIT
  pinned_setup "$work" "$UP" "$NGX" "$TG" "$BIN"
  ngw=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
}
pinned_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }

# ticks PID: its user and system CPU so far, in clock ticks.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
