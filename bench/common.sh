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
