#!/usr/bin/env bash
# make cluster: Gantry as a cluster of hosts on this one machine. Each host is a network namespace
# of its own, joined by a veth pair to a bridge in a namespace of its own (10.77.0.0/24):
#   gantry-db   10.77.0.2    PostgreSQL and RabbitMQ of the cluster's own
#   gantry-lb   10.77.0.5    HAProxy: :8080 over the two apis, checking /ready every 500 ms
#   gantry-a1/2 10.77.0.11/12  gantry-api
#   gantry-w1/2/3 10.77.0.21–23 gantry-worker (every worker reaches this machine's Docker engine
#                             through its socket, which no network namespace separates)
#   gantry-cl   10.77.0.100  the client: gantry-loadtest
# all under one supervisord (restart on exit). Then, through the load balancer:
#   partition   200 two-step changes while the link of api host a1 and of worker host w1 is cut
#               (ip link set down on the bridge's side) and brought back; every change must end
#               final exactly once (gantry-loadtest reliability: lost, duplicated, overlapping, I4)
#   scaling     steps/s of `gantry-loadtest steps` with 1, 2 and 3 workers, beside the raw
#               container churn of this machine
# The report goes to docs/cluster.md. `scripts/cluster.sh up` only starts the cluster (and
# prints how to reach it); `scripts/cluster.sh down` removes it.
{
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-run}
dir=$root/.local/cluster
run=/tmp/gantry-cluster
# shellcheck source=lib/supervised.sh
. scripts/lib/supervised.sh
net=10.77.0
hosts="db:2 lb:5 a1:11 a2:12 w1:21 w2:22 w3:23 cl:100"
bridge=gantry-br
ns() { echo "gantry-$1"; }
in_ns() { local n; n=$(ns "$1"); shift; as_root ip netns exec "$n" "$@"; }

network_down() {
  for pair in $hosts; do as_root ip netns del "$(ns "${pair%%:*}")" 2>/dev/null || true; done
  as_root ip netns del "$bridge" 2>/dev/null || true
}

network_up() {
  network_down
  as_root ip netns add "$bridge"
  as_root ip -n "$bridge" link add br0 type bridge
  as_root ip -n "$bridge" link set br0 up
  for pair in $hosts; do
    local host=${pair%%:*} octet=${pair##*:} n; n=$(ns "${pair%%:*}")
    as_root ip netns add "$n"
    as_root ip link add "v-$host" netns "$n" type veth peer name "b-$host" netns "$bridge"
    as_root ip -n "$bridge" link set "b-$host" master br0 up
    as_root ip -n "$n" addr add "$net.$octet/24" dev "v-$host"
    as_root ip -n "$n" link set "v-$host" up
    as_root ip -n "$n" link set lo up
  done
}

# Cuts a host off the bridge (its processes live on, unreachable), or brings it back.
link() { as_root ip -n "$bridge" link set "b-$1" "$2"; }

if [ "$mode" = down ]; then
  supervised_shutdown; network_down; log "the cluster is down"; exit 0
fi

ensure_package haproxy haproxy
cargo build --release --quiet -p gantry-api -p gantry-worker -p gantry-loadtest --bins
bin=$root/target/release
supervised_prepare "$net.0/24"
network_up
database=gantry_cluster node=gantrycl@localhost
token=$(grep -oP 'admin_token: "\K[^"]+' configuration/local.yaml)
export GANTRY_CONFIG_DIR=$root/configuration
export GANTRY_DATABASE__URL=postgres://postgres@$net.2:5432/$database
export GANTRY_AMQP__URL=amqp://guest:guest@$net.2:5672/%2f
export GANTRY_AMQP__PREFIX=cluster_
export GANTRY_API__HOST=0.0.0.0 GANTRY_API__PORT=3000
export GANTRY_WORKER__METRICS_PORT=0
export GANTRY_WORKER__LEASE_SECONDS=10
export GANTRY_WORKER__REAPER_INTERVAL_SECONDS=1
export GANTRY_WORKER__ORPHAN_SWEEP_INTERVAL_SECONDS=5
export GANTRY_WORKER__HEARTBEAT_SECONDS=2
# The api hosts are behind HAProxy: the failed-authentication limit counts the clients.
export GANTRY_API__TRUSTED_PROXIES=$net.5/32

# HAProxy in front of the apis: a request whose api host does not take the connection goes to
# the other one; a host failing two checks 500 ms apart is taken out until it passes two.
{
  printf 'global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 60s\n'
  printf '  timeout server 10s\n  retries 3\n  option redispatch\n'
  printf 'frontend api\n  bind %s:8080\n  default_backend apis\n' "$net.5"
  printf 'backend apis\n  balance roundrobin\n  option httpchk GET /ready\n  default-server inter 500ms fall 2 rise 2\n'
  printf '  server a1 %s:3000 check\n  server a2 %s:3000 check\n' "$net.11" "$net.12"
} > "$run/haproxy.cfg"
conf=$dir/supervisord.conf
exec_in() { echo "ip netns exec $(ns "$1") "; }
{
  supervised_header
  postgres_program 5432 "'$net.2,127.0.0.1'" "$(ns db)"
  rabbitmq_program "$node" 5672 25672 "$(ns db)"
  gantry_program lb "$(exec_in lb)/usr/sbin/haproxy -db -f $run/haproxy.cfg" ""
  for n in 1 2; do gantry_program "api$n" "$(exec_in "a$n")$bin/gantry-api" ""; done
  for n in 1 2 3; do
    gantry_program "worker$n" "$(exec_in "w$n")$bin/gantry-worker" \
      "GANTRY_WORKER__HOST=\"w$n\",GANTRY_WORKER__GIT_CACHE_DIR=\"$run/git-cache-$n\""
  done
} > "$conf"
cleanup() { supervised_shutdown; network_down; }
[ "$mode" = up ] || trap cleanup EXIT
amqp_up() { in_ns cl bash -c "exec 3<>/dev/tcp/$net.2/5672" 2>/dev/null && in_ns db rabbitmqctl -q -n "$node" await_startup; }

supervisord -c "$conf"
wait_for PostgreSQL 30 in_ns cl pg_isready -h "$net.2" -q
wait_for RabbitMQ 90 amqp_up
in_ns cl psql -h "$net.2" -U postgres -qc "CREATE DATABASE $database"
in_ns cl env GANTRY_DATABASE__URL="$GANTRY_DATABASE__URL" "$bin/gantry-api" migrate >/dev/null
ctl start lb api1 api2 worker1 worker2 worker3 >/dev/null
wait_for "the load balancer" 60 in_ns cl curl -fs "http://$net.5:8080/ready"
log "the cluster runs (logs in $dir): apis $net.11, $net.12 behind http://$net.5:8080; workers w1–w3"
if [ "$mode" = up ]; then
  log "reach it with: sudo ip netns exec $(ns cl) curl -H 'Authorization: Bearer $token' http://$net.5:8080/api/workers"
  exit 0
fi

loadtest() { in_ns cl env "${gantry_env[@]}" GANTRY_TOKEN="$token" "$bin/gantry-loadtest" --url "http://$net.5:8080" "$@"; }
mapfile -t gantry_env < <(env | grep '^GANTRY_')
workers_alive() {
  in_ns cl curl -fsS -H "Authorization: Bearer $token" "http://$net.5:8080/api/workers?filter%5Bstatus_eq%5D=alive" \
    | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))'
}

# The partition: a1 cut off at 5 s for 15 s, w1 at 10 s for 25 s (past its 10 s lease).
partition() {
  sleep 5; link a1 down
  sleep 5; link w1 down
  sleep 10; link a1 up
  sleep 15; link w1 up
}
log "partition: 200 two-step changes through the load balancer; a1 and w1 cut off and brought back"
partition & injector=$!
status=0
loadtest --json "$dir/partition.json" reliability --changes 200 --apis "http://$net.5:8080" \
  --pace-ms 150 --step-seconds 1 --timeout-seconds 300 >"$dir/partition.log" 2>&1 || status=$?
wait "$injector" || true
link a1 up; link w1 up
tail -5 "$dir/partition.log"
sleep 6
alive_after=$(workers_alive)

log "scaling: steps/s with 1, 2 and 3 workers"
ctl stop worker2 worker3 >/dev/null
for n in 1 2 3; do
  [ "$n" -eq 1 ] || ctl start "worker$n" >/dev/null
  sleep 3
  loadtest --json "$dir/steps-$n.json" steps --changes 16 --steps 4 >"$dir/steps-$n.log" 2>&1 || status=1
done
loadtest --json "$dir/raw.json" raw --lifecycles 5 --churn 48 --inserts 100 --versioned 50 >"$dir/raw.log" 2>&1 || status=1

a1_down=$(grep -c 'apis/a1 is DOWN' "$dir/lb.log" || true)
dropped=$(grep -c 'its outcome is dropped' "$dir/worker1.log" || true)
reaped=$(cat "$dir"/worker[23].log | sed 's/\x1b\[[0-9;]*m//g' | grep -oP 'whose lease expired count=\K[0-9]+' | awk '{ s += $1 } END { print s + 0 }')
python3 scripts/cluster_report.py "$dir" "$alive_after" "$status" "$a1_down" "$dropped" "${reaped:-0}" > docs/cluster.md
cat docs/cluster.md
exit "$status"
}
