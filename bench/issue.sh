#!/usr/bin/env bash
# Token issuance throughput with the embedded store: tollgate pinned to one core
# (taskset -c 0), wrk on the other, loopback only, each run bounded by DURATION.
#   DURATION=10s bench/issue.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
ADDR=127.0.0.1:18280
need=""
for c in wrk curl taskset; do command -v $c >/dev/null || need="$need $c"; done
need=${need/taskset/util-linux}
if [ -n "$need" ]; then apt-get update -qq && apt-get install -y -qq $need; fi
cargo build --release -q
work=$(mktemp -d)
cat > "$work/gw.yaml" <<YAML
listen: { address: "$ADDR" }
store: { path: $work/data/tollgate.db }
apps: [{ id: bench, secret: bench-secret, space_id: 1, user: u, oauth_scopes: [read],
         grants: [{ resource: TEMPLATE, id: "*", permission: MOCK }] }]
dialects: { oauth: {}, bkflow: { prefix: "" } }
# Issuance throughput, not the per-client limits (which default to 20/s per IP).
limits: { token_rate: { per_ip: 1000000/s, per_ip_burst: 1000000, per_app: 1000000/s, per_app_burst: 1000000 } }
YAML
TOLLGATE_LOG=warn taskset -c 0 target/release/tollgate run --config "$work/gw.yaml" & pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://$ADDR/" && break; sleep 0.1; done

cat > "$work/new.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  local body = '{"bk_app_code":"bench","bk_app_secret":"bench-secret","resource_type":"TEMPLATE","resource_id":"' .. n .. '","permission_type":"VIEW"}'
  return wrk.format("POST", "/space/1/apply_token/", {["Content-Type"] = "application/json"}, body)
end
LUA
cat > "$work/same.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"bk_app_code":"bench","bk_app_secret":"bench-secret","resource_type":"TEMPLATE","resource_id":"1","permission_type":"VIEW"}'
LUA
cat > "$work/oauth.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"app_id":"bench","app_secret":"bench-secret"}'
LUA
# Warm the secret cache (the first request pays argon2).
curl -s -o /dev/null -X POST "http://$ADDR/oauth/token/get" -d '{"app_id":"bench","app_secret":"bench-secret"}'

run() { # $1 label, $2 script, $3 path
  local out rps
  out=$(taskset -c 1 wrk -t1 -c16 -d"$DURATION" -s "$2" "http://$ADDR$3")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  printf '| %-52s | %10s |\n' "$1" "$rps"
}
echo "tollgate on 1 core (taskset -c 0), wrk -t1 -c16 -d$DURATION on the other; SQLite WAL, synchronous=FULL"
echo
printf '| %-52s | %10s |\n' "issuance" "tokens/s"
printf '|%s|%s|\n' "------------------------------------------------------" "------------"
run "bkflow apply_token, a new token each (insert + fsync)" "$work/new.lua" /space/1/apply_token/
run "bkflow apply_token, the same token renewed (update)" "$work/same.lua" /space/1/apply_token/
run "oauth /oauth/token/get (RS256 JWT, no store write)" "$work/oauth.lua" /oauth/token/get
echo
echo "store file: $(du -sh "$work/data" | cut -f1) after the runs"
