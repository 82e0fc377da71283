#!/usr/bin/env bash
# Heap allocations per proxied request (JWT route, hot-map hit, keep-alive), counted by
# valgrind's DHAT: blocks allocated during a bounded wrk run minus an idle run with the
# same start-up, divided by the requests served. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-5}
need=""
for c in valgrind wrk nginx curl; do command -v $c >/dev/null || need="$need $c"; done
need=${need/nginx/nginx-light}
if [ -n "$need" ]; then apt-get update -qq && apt-get install -y -qq $need; fi
cargo build --release -q
BIN=$PWD/target/release/tollgate
work=$(mktemp -d)
trap 'kill $(cat "$work/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/ngx.conf" <<NGINX
worker_processes 1; daemon on; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:18181; location / { return 200 "ok"; } } }
NGINX
nginx -c "$work/ngx.conf" -p "$work"
cat > "$work/gw.yaml" <<YAML
listen: { address: "127.0.0.1:18190" }
store: { path: $work/db }
apps: [{ id: bench, secret: bench-secret, oauth_scopes: [read] }]
dialects: { oauth: {} }
upstreams: { product: { targets: ["http://127.0.0.1:18181"] } }
routes:
  - { path: /product/get, upstream: product, auth: bearer, require: { oauth_scope: read } }
YAML
measure() { # $1: seconds of load (0 = idle)
  TOLLGATE_LOG=warn valgrind --tool=dhat --dhat-out-file="$work/dhat.$1" "$BIN" run --config "$work/gw.yaml" 2>/dev/null &
  local vp=$!
  for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18190/ && break; sleep 0.3; done
  local t; t=$(curl -s -X POST http://127.0.0.1:18190/oauth/token/get -d '{"app_id":"bench","app_secret":"bench-secret"}' | sed -E 's/.*"accessToken":"([^"]*)".*/\1/')
  curl -s -o /dev/null -H "Authorization: $t" http://127.0.0.1:18190/product/get
  local n=0
  [ "$1" = 0 ] || n=$(wrk -t1 -c1 -d"${1}s" -H "Authorization: $t" http://127.0.0.1:18190/product/get | awk '/requests in/ {print $1}')
  kill -INT $vp; wait $vp 2>/dev/null || true
  echo "$n" > "$work/n.$1"
}
measure 0
measure "$SECS"
python3 - "$work" "$SECS" <<'PY'
import collections, json, sys
work, secs = sys.argv[1], sys.argv[2]
busy, idle = (json.load(open(f"{work}/dhat.{x}")) for x in (secs, "0"))
n = int(open(f"{work}/n.{secs}").read())
blocks = lambda d: sum(pp["tbk"] for pp in d["pps"])
print(f"{n} requests; {(blocks(busy) - blocks(idle)) / n:.1f} heap allocations per request")
by = collections.Counter()
for pp in busy["pps"]:
    frames = [busy["ftbl"][i] for i in pp["fs"]]
    own = next((f.split(": ", 1)[1].split(" (in")[0] for f in frames if "tollgate::" in f), "(hyper, tokio, std)")
    by[own] += pp["tbk"]
for site, b in by.most_common(6):
    print(f"  {b / n:5.2f}  {site}")
PY
