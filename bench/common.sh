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
limits: { token_rate: { per_ip: 100000/s, per_ip_burst: 100000 } }
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

# nginx_proxy DIR UPSTREAM PLAIN [TLS CERT KEY]: nginx as the reference proxy, one worker,
# 64 kept upstream connections; with TLS also a TLS 1.3 listener. As DIR/nginx.conf.
nginx_proxy() {
  local pass='location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }'
  local tls=""
  if [ -n "${4:-}" ]; then
    tls="server { listen $4 ssl; ssl_certificate $5; ssl_certificate_key $6; ssl_protocols TLSv1.3; $pass }"
  fi
  cat > "$1/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $1/nginx.pid; error_log $1/nginx.err;
events { worker_connections 4096; }
http { access_log off;
  upstream origin { server $2; keepalive 64; }
  server { listen $3; $pass }
  $tls }
NGINX
}
