#!/usr/bin/env bash
# make reliability: the fault scenarios of RELIABILITY.md against real processes on this machine —
# two gantry-api and three gantry-worker processes under supervisord (Debian's `supervisor`, the
# restart policy a user would give them: a killed process comes back without a person), real
# PostgreSQL, RabbitMQ and Docker — each scenario checked by `gantry-loadtest reliability`
# (changes accepted / final / lost / duplicated / overlapping, recovery, peak outbox depth) with
# the workers' peak memory sampled here; the table goes to docs/reliability.md.
#
# Scenarios so far: S1 (no faults) and S2 (SIGKILL a random worker every 5 s while the changes
# run; supervisord restarts it). RELIABILITY_CHANGES sets the changes per scenario (S1: 50, S2: 100).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
log() { printf '==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

command -v supervisord >/dev/null || {
  log "installing supervisor"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq supervisor >/dev/null
}
cargo build --quiet -p gantry-api -p gantry-worker -p gantry-loadtest --bins
bin=$root/target/debug
dir=$root/.local/reliability
database=gantry_reliability
rm -rf "$dir" && mkdir -p "$dir"
token=$(grep -oP 'admin_token: "\K[^"]+' configuration/local.yaml)
export GANTRY_CONFIG_DIR=$root/configuration
export GANTRY_DATABASE__URL=postgres://postgres@127.0.0.1:5432/$database
export GANTRY_AMQP__PREFIX=reliability_
export GANTRY_WORKER__METRICS_PORT=0
export GANTRY_WORKER__LEASE_SECONDS=6
export GANTRY_WORKER__REAPER_INTERVAL_SECONDS=1
export GANTRY_WORKER__ORPHAN_SWEEP_INTERVAL_SECONDS=2
export GANTRY_WORKER__SHUTDOWN_GRACE_SECONDS=5
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $database"
"$bin/gantry-api" migrate >/dev/null

# One supervisord for the five processes; each program restarts whenever it exits.
conf=$dir/supervisord.conf
{
  printf '[supervisord]\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nchildlogdir=%s\n' "$dir" "$dir" "$dir"
  printf '[unix_http_server]\nfile=%s/supervisor.sock\n' "$dir"
  printf '[supervisorctl]\nserverurl=unix://%s/supervisor.sock\n' "$dir"
  printf '[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n'
  for n in 1 2; do
    printf '[program:api%s]\ncommand=%s/gantry-api\nenvironment=GANTRY_API__PORT="%s"\n' "$n" "$bin" "$((3100 + n))"
    printf 'autorestart=true\nstartsecs=1\nstopsignal=TERM\nstopwaitsecs=30\nredirect_stderr=true\nstdout_logfile=%s/api%s.log\n' "$dir" "$n"
  done
  for n in 1 2 3; do
    # Each worker its own Git cache, as on separate hosts.
    printf '[program:worker%s]\ncommand=%s/gantry-worker\nenvironment=GANTRY_WORKER__GIT_CACHE_DIR="%s/git-cache-%s"\n' "$n" "$bin" "$dir" "$n"
    printf 'autorestart=true\nstartsecs=1\nstopsignal=TERM\nstopwaitsecs=30\nredirect_stderr=true\nstdout_logfile=%s/worker%s.log\n' "$dir" "$n"
  done
} > "$conf"
ctl() { supervisorctl -c "$conf" "$@"; }
cleanup() {
  ctl shutdown >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
supervisord -c "$conf"
for port in 3101 3102; do
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.2; done
done
log "supervisord runs api1, api2, worker1, worker2, worker3 (logs in $dir)"

# Peak resident memory of the workers, in MiB, sampled every second into $1 until killed.
sample_memory() {
  local peak=0
  while true; do
    for name in worker1 worker2 worker3; do
      local pid; pid=$(ctl pid "$name" 2>/dev/null || echo 0)
      local rss; rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ' || true)
      [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
    done
    echo $((peak / 1024)) > "$1"
    sleep 1
  done
}

# SIGKILL a random worker every 5 s until killed; counts the kills into $1.
kill_workers() {
  local kills=0
  while true; do
    sleep 5
    local name="worker$((RANDOM % 3 + 1))"
    local pid; pid=$(ctl pid "$name" 2>/dev/null || echo 0)
    if [ "$pid" -gt 0 ]; then kill -9 "$pid" 2>/dev/null && kills=$((kills + 1)); fi
    echo "$kills" > "$1"
  done
}

run_scenario() { # id, description, changes, fault function or ""
  local id=$1 description=$2 changes=$3 fault=$4
  log "$id: $description ($changes changes of 2 steps)"
  echo 0 > "$dir/$id.memory"; echo 0 > "$dir/$id.kills"
  sample_memory "$dir/$id.memory" & local sampler=$!
  local injector=""
  if [ -n "$fault" ]; then "$fault" "$dir/$id.kills" & injector=$!; fi
  local status=0
  GANTRY_TOKEN=$token "$bin/gantry-loadtest" reliability --changes "$changes" \
    --apis http://127.0.0.1:3101,http://127.0.0.1:3102 --json "$dir/$id.json" || status=$?
  [ -n "$injector" ] && kill "$injector" 2>/dev/null
  kill "$sampler" 2>/dev/null
  python3 - "$dir/$id.json" "$id" "$description" "$(cat "$dir/$id.memory")" "$(cat "$dir/$id.kills")" "$status" >> "$dir/rows.md" <<'PY'
import json, sys
path, sid, description, memory, kills, status = sys.argv[1:]
r = json.load(open(path))
verdict = "pass" if status == "0" else "FAIL"
print(f"| {sid} | {description} | {r['submitted']} | {r['accepted']} | {r['final_']} | {r['succeeded']} | {r['lost']} | "
      f"{r['duplicated']} | {r['overlapping']} | {r['recovery_seconds']:.1f} s | {r['peak_outbox_depth']} | "
      f"{memory} MiB | {kills} | {'yes' if r['drained'] else 'no'} | {verdict} |")
PY
  tail -1 "$dir/rows.md"
  return "$status"
}

failed=0
run_scenario S1 "no faults" "${RELIABILITY_CHANGES:-50}" "" || failed=1
run_scenario S2 "SIGKILL a random worker every 5 s" "${RELIABILITY_CHANGES:-100}" kill_workers || failed=1

{
  echo "# Reliability"
  echo
  echo "Measured by \`make reliability\` (\`scripts/reliability.sh\`) on $(date -u +%Y-%m-%dT%H:%M:%SZ): two gantry-api and"
  echo "three gantry-worker processes under supervisord (restart on exit), the changes submitted to both"
  echo "apis in turn with an \`Idempotency-Key\` each, retried on the other api when one fails. After each"
  echo "scenario \`gantry-loadtest reliability\` checks the invariants of ../shared/RELIABILITY.md: I1 every"
  echo "accepted change final (lost), no step finished twice nor extra steps (duplicated), no two attempts"
  echo "of a step running at once on the Docker engine's clock (overlapping), and I5 everything drained"
  echo "(no unpublished outbox row, no lease, no step container left). Recovery is from the last"
  echo "submission to every change final."
  echo
  echo "| # | scenario | submitted | accepted | final | succeeded | lost | duplicated | overlapping | recovery | peak outbox | worker peak memory | kills | drained | verdict |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  cat "$dir/rows.md"
  echo
  echo "S3–S20 are not automated here yet; several are covered by the test suite (S8 poison messages,"
  echo "S9 timeouts, S10–S11 properties, S12 hardening, S14–S15 access and bodies, S16–S20)."
} > docs/reliability.md
log "wrote docs/reliability.md"
exit $failed
