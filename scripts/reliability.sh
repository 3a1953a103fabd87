#!/usr/bin/env bash
# make reliability: the fault scenarios of ../shared/RELIABILITY.md against real processes on this
# machine, each checked by `gantry-loadtest reliability` (accepted / final / lost / duplicated /
# overlapping, I4 property versions, I5 drain, I7 5xx, recovery, peak outbox depth) with the
# workers' peak memory sampled here; the table goes to docs/reliability.md.
#
# One supervisord (Debian's `supervisor`: the restart policy a user would give these processes, a
# killed process comes back without a person) runs a PostgreSQL and a RabbitMQ of the suite's own
# (ports 5498 and 5698, so that stopping, killing and pausing them touches nothing else on the
# machine), two gantry-api (3101, 3102) and three gantry-worker processes. For the full suite the
# workers are built with the `failpoints` feature: S3 arms their crash points through
# $run/failpoints.
#
#   scripts/reliability.sh          every scenario
#   scripts/reliability.sh quick    the subset make test runs (S1, S2, S4, S7, S8), in minutes
#
# RELIABILITY_CHANGES scales the changes per scenario (default 100; quick: 30); RELIABILITY_ONLY
# names the parts to run (e.g. "S3 S7 hostile tests"; the table then holds only those). S9, S13 and S18 run
# as hostile steps against the same stack (gantry-loadtest hostile); S10–S12, S14–S17, S19 and S20
# are tests of the suite, run here by name.
# The whole script is one block, read before it runs: editing the file meanwhile changes nothing.
{
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mode=${1:-full}
# shellcheck source=lib/supervised.sh
. scripts/lib/supervised.sh
cargo build --quiet -p gantry-api -p gantry-loadtest --bins
if [ "$mode" = quick ]; then
  cargo build --quiet -p gantry-worker --bins
else
  cargo build --quiet -p gantry-worker --features failpoints --bins
fi
bin=$root/target/debug
dir=$root/.local/reliability          # logs, the table's rows
run=/tmp/gantry-reliability           # the suite's PostgreSQL and RabbitMQ data
supervised_prepare
: > "$run/failpoints"
if [ "$mode" = quick ]; then scale=${RELIABILITY_CHANGES:-30}; else scale=${RELIABILITY_CHANGES:-100}; fi
changes() { echo $(( ($1 * scale + 99) / 100 )); } # $1 changes at scale 100

pg_port=5498 amqp_port=5698 node=gantryrel@localhost database=gantry_reliability
token=$(grep -oP 'admin_token: "\K[^"]+' configuration/local.yaml)
canary="canary-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export GANTRY_CONFIG_DIR=$root/configuration
export GANTRY_DATABASE__URL=postgres://postgres@127.0.0.1:$pg_port/$database
export GANTRY_AMQP__URL=amqp://guest:guest@127.0.0.1:$amqp_port/%2f
export GANTRY_AMQP__PREFIX=reliability_
export GANTRY_WORKER__METRICS_PORT=0
export GANTRY_WORKER__LEASE_SECONDS=6
export GANTRY_WORKER__REAPER_INTERVAL_SECONDS=1
export GANTRY_WORKER__ORPHAN_SWEEP_INTERVAL_SECONDS=2
export GANTRY_WORKER__SHUTDOWN_GRACE_SECONDS=5

# A worker reads the crash points S3 arms when it starts.
cat > "$run/worker.sh" <<EOF
#!/bin/sh
points=\$(cat "$run/failpoints")
if [ -n "\$points" ]; then export FAILPOINTS="\$points"; fi
exec "$bin/gantry-worker"
EOF
chmod 755 "$run/worker.sh"

conf=$dir/supervisord.conf
{
  supervised_header
  postgres_program "$pg_port" 127.0.0.1
  rabbitmq_program "$node" "$amqp_port" 25698
  for n in 1 2; do gantry_program "api$n" "$bin/gantry-api" "GANTRY_API__PORT=\"$((3100 + n))\""; done
  # Each worker its own Git cache, as on separate hosts.
  for n in 1 2 3; do gantry_program "worker$n" "$run/worker.sh" "GANTRY_WORKER__GIT_CACHE_DIR=\"$run/git-cache-$n\""; done
} > "$conf"
trap supervised_shutdown EXIT
amqp_up() { (exec 3<>"/dev/tcp/127.0.0.1/$amqp_port") 2>/dev/null && as_root rabbitmqctl -q -n "$node" await_startup; }
beam_pid() { # the suite's RabbitMQ's Erlang VM: the program supervisord started, or its child
  local pid; pid=$(ctl pid rabbitmq 2>/dev/null || echo 0)
  [ "$pid" -gt 0 ] || return 0
  if [ "$(basename "$(readlink "/proc/$pid/exe")")" = beam.smp ]; then echo "$pid"; else pgrep -P "$pid" beam.smp | head -1; fi
}

supervisord -c "$conf"
wait_for PostgreSQL 30 pg_isready -h 127.0.0.1 -p $pg_port -q
wait_for RabbitMQ 90 amqp_up
psql -h 127.0.0.1 -p $pg_port -U postgres -qc "CREATE DATABASE $database"
"$bin/gantry-api" migrate >/dev/null
ctl start api1 api2 worker1 worker2 worker3 >/dev/null
for port in 3101 3102; do wait_for "gantry-api on $port" 30 curl -fs "http://127.0.0.1:$port/ready"; done
log "supervisord runs postgres:$pg_port, rabbitmq:$amqp_port, api1, api2, worker1, worker2, worker3 (logs in $dir)"

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

worker_pid() { ctl pid "$1" 2>/dev/null || echo 0; }
# Ends a background job and its children (a sleep it waits on would otherwise live on).
stop_job() {
  local children; children=$(pgrep -P "$1" || true)
  kill "$1" 2>/dev/null || true
  # (Between two of its sleeps a job has no child: `[ -n "" ] && …` would fail the script.)
  if [ -n "$children" ]; then kill $children 2>/dev/null || true; fi
  wait "$1" 2>/dev/null || true
}

# The fault injectors: each runs beside the changes and counts its faults into $1.
kill_workers() { # S2: SIGKILL a random worker every 5 s
  local kills=0
  while true; do
    sleep 5
    local pid; pid=$(worker_pid "worker$((RANDOM % 3 + 1))")
    if [ "$pid" -gt 0 ]; then kill -9 "$pid" 2>/dev/null && kills=$((kills + 1)); fi
    echo "$kills" > "$1"
  done
}
broker_stopped() { # S4: RabbitMQ stopped for 10 s, then killed -9 (and restarted by supervisord)
  sleep 2; ctl stop rabbitmq >/dev/null; echo 1 > "$1"
  sleep 10; ctl start rabbitmq >/dev/null
  wait_for RabbitMQ 90 amqp_up; sleep 5
  kill -9 "$(beam_pid)" && echo 2 > "$1"
  sleep 3; wait_for RabbitMQ 90 amqp_up
  sleep infinity
}
database_restarted() { # S5: PostgreSQL shut down immediately, started again 5 s later
  sleep 3; ctl stop postgres >/dev/null; echo 1 > "$1"
  sleep 5; ctl start postgres >/dev/null
  sleep infinity
}
broker_paused() { # S6: RabbitMQ paused (SIGSTOP) for 30 s
  sleep 3; local pid; pid=$(beam_pid)
  kill -STOP "$pid"; echo 1 > "$1"; date -u +%s.%N > "$1.paused_at"
  sleep 30; kill -CONT "$pid"
  sleep infinity
}
dropped="its outcome is dropped" # what a worker logs of an attempt it no longer owns
zombie_worker() { # S7: a worker paused past its lease (6 s) while it runs steps, then resumed
  sleep 4; local pid; pid=$(worker_pid worker1)
  grep -c "$dropped" "$dir/worker1.log" > "$1.dropped" || true
  kill -STOP "$pid"; echo 1 > "$1"
  sleep 15; kill -CONT "$pid"
  sleep infinity
}

run_scenario() { # id, description, changes, fault function or "", gantry-loadtest options...
  # (a fault meant to meet submissions passes --pace-ms spreading them over its length)
  local id=$1 description=$2 count=$3 fault=$4; shift 4
  log "$id: $description ($count changes of 2 steps)"
  echo 0 > "$dir/$id.memory"; echo 0 > "$dir/$id.faults"
  local w pids_before; pids_before=$(for w in 1 2 3; do worker_pid "worker$w"; done)
  sample_memory "$dir/$id.memory" & local sampler=$!
  local injector=""
  if [ -n "$fault" ]; then "$fault" "$dir/$id.faults" & injector=$!; fi
  local status=0
  GANTRY_TOKEN=$token "$bin/gantry-loadtest" reliability --changes "$count" --canary "$canary" \
    --apis http://127.0.0.1:3101,http://127.0.0.1:3102 --json "$dir/$id.json" "$@" || status=$?
  if [ -n "$injector" ]; then stop_job "$injector"; fi
  if [ -f "$dir/$id.faults.paused_at" ]; then # S6: how long until a process noticed the dead broker
    local noticed; noticed=$(python3 - "$(cat "$dir/$id.faults.paused_at")" "$dir"/api*.log "$dir"/worker*.log <<'PY'
import re, sys
from datetime import datetime
paused = float(sys.argv[1])
seen = []
for path in sys.argv[2:]:
    for line in open(path, errors="replace"):
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if "heartbeat" not in line:
            continue
        stamp = line.split(" ", 1)[0].rstrip("Z")[:26]
        try:
            at = datetime.fromisoformat(stamp + "+00:00").timestamp()
        except ValueError:
            continue
        if at > paused:
            seen.append(at - paused)
print(f"{min(seen):.1f} s" if seen else "never")
PY
)
    echo "1 pause; noticed after $noticed" > "$dir/$id.faults"
  fi
  if [ -f "$dir/$id.faults.dropped" ]; then # S7: the stale attempts the zombie dropped on waking
    sleep 3
    local after; after=$(grep -c "$dropped" "$dir/worker1.log" || true)
    echo "1 pause; $((after - $(cat "$dir/$id.faults.dropped"))) stale attempts dropped" > "$dir/$id.faults"
  fi
  stop_job "$sampler"
  # Whatever a fault left stopped or paused is running again before the next scenario.
  ctl start rabbitmq postgres >/dev/null 2>&1 || true
  for w in 1 2 3; do kill -CONT "$(worker_pid "worker$w")" 2>/dev/null || true; done
  kill -CONT "$(beam_pid)" 2>/dev/null || true
  wait_for RabbitMQ 90 amqp_up
  # The Docker engine still answers (it once stopped doing so under this churn): if not, its
  # goroutines go to its log (SIGUSR1) for the post-mortem, and the scenario fails.
  if ! timeout 30 docker ps -q >/dev/null 2>&1; then
    echo "the Docker engine did not answer after $id; goroutine dump requested (dockerd's log)" >&2
    as_root pkill -USR1 -x dockerd || true
    status=1
  fi
  if [ "$id" = S8 ]; then # the workers stayed up through the poison
    local pids_after; pids_after=$(for w in 1 2 3; do worker_pid "worker$w"; done)
    if [ "$pids_before" != "$pids_after" ]; then echo "a worker restarted during S8" >&2; status=1; fi
  fi
  [ -f "$dir/$id.json" ] || { echo "| $id | $description | no report: gantry-loadtest failed ($status) ||||||||||||||| FAIL |" >> "$dir/rows.md"; return 1; }
  python3 - "$dir/$id.json" "$id" "$description" "$(cat "$dir/$id.memory")" "$(cat "$dir/$id.faults")" "$status" >> "$dir/rows.md" <<'PY'
import json, sys
path, sid, description, memory, faults, status = sys.argv[1:]
r = json.load(open(path))
verdict = "pass" if status == "0" else "FAIL"
i4 = "yes" if r['patches_not_once'] == 0 and r['versions_contiguous'] and r['last_version_is_current'] else "NO"
dead = f", {r['dead_lettered']} dead-lettered"
print(f"| {sid} | {description} | {r['submitted']} | {r['accepted']} | {r['final_']} | {r['succeeded']} | {r['lost']} | "
      f"{r['duplicated']} | {r['overlapping']} | {i4} ({r['versions']} versions) | {r['recovery_seconds']:.1f} s | "
      f"{r['peak_outbox_depth']} | {memory} MiB | {faults} | {r['unavailable_answers']} / {r['server_errors']} | "
      f"{'yes' if r['drained'] else 'no'}{dead} | {verdict} |")
PY
  tail -1 "$dir/rows.md"
  return "$status"
}

# S3: each crash point armed in worker1 (30% of its passes through it abort the process;
# supervisord starts it again, still armed), then disarmed. The faults are its crashes.
point=""
count_crashes() {
  local before; before=$(grep -c "crash point $point reached" "$dir/worker1.log" || true)
  while true; do
    echo $(( $(grep -c "crash point $point reached" "$dir/worker1.log" || true) - before )) > "$1"
    sleep 1
  done
}
crash_points() {
  local failed=0 i=0
  for point in runner::after_claim runner::after_start runner::after_exit results::after_apply \
      outbox::before_publish outbox::before_mark; do
    i=$((i + 1))
    echo "$point=30%return" > "$run/failpoints"
    ctl restart worker1 >/dev/null
    run_scenario "S3.$i" "crash $point (worker1, 30% of passes)" "$(changes 20)" count_crashes || failed=1
    : > "$run/failpoints"
  done
  ctl restart worker1 >/dev/null
  return $failed
}

# Whether part $1 runs: the mode's parts, narrowed by RELIABILITY_ONLY.
want() {
  case "$mode:$1" in quick:S3|quick:S5|quick:S6|quick:hostile|quick:tests) return 1 ;; esac
  [ -z "${RELIABILITY_ONLY:-}" ] || [[ " $RELIABILITY_ONLY " == *" $1 "* ]]
}
failed=0
! want S1 || run_scenario S1 "no faults" "$(changes 50)" "" || failed=1
! want S2 || run_scenario S2 "SIGKILL a random worker every 5 s" "$(changes 100)" kill_workers || failed=1
! want S3 || crash_points || failed=1
spread() { echo $(( $1 * 1000 / $2 )); } # pace in ms: $1 seconds over $2 changes
n=$(changes 100); ! want S4 || run_scenario S4 "RabbitMQ stopped 10 s, then killed -9" "$n" broker_stopped --pace-ms "$(spread 30 "$n")" || failed=1
n=$(changes 60); ! want S5 || run_scenario S5 "PostgreSQL shut down (immediate) for 5 s" "$n" database_restarted --pace-ms "$(spread 12 "$n")" || failed=1
n=$(changes 40); ! want S6 || run_scenario S6 "RabbitMQ paused (SIGSTOP) 30 s" "$n" broker_paused --pace-ms "$(spread 10 "$n")" || failed=1
n=$(changes 20); ! want S7 || run_scenario S7 "worker1 paused 15 s past its 6 s lease" "$n" zombie_worker --pace-ms "$(spread 8 "$n")" --step-seconds 3 || failed=1
! want S8 || run_scenario S8 "poison messages: not JSON, 8 MiB, unknown step" "$(changes 20)" "" --poison || failed=1

# S9, S13, S18: hostile steps, all at once, while the api is probed.
if want hostile; then
  log "S9, S13, S18: hostile steps"
  echo 0 > "$dir/hostile.memory"
  sample_memory "$dir/hostile.memory" & sampler=$!
  status=0
  GANTRY_TOKEN=$token "$bin/gantry-loadtest" --url http://127.0.0.1:3101 --json "$dir/hostile.json" hostile || status=$?
  stop_job "$sampler"
  [ "$status" -eq 0 ] || failed=1
  if [ -f "$dir/hostile.json" ]; then
    python3 - "$dir/hostile.json" "$(cat "$dir/hostile.memory")" > "$dir/hostile.md" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("| # | step | status | reason in its log | time | stored log | verdict |")
print("|---|---|---|---|---|---|---|")
for c in r["cases"]:
    reason = " or ".join(f'\"{r}\"' for r in c['reason'].split('|'))
    print(f"| {c['scenario']} | {c['action']} | {c['status']} | {'yes' if c['reason_logged'] else 'NO'}: {reason} | "
          f"{c['seconds']:.1f} s | {c['stored_bytes'] / 1024:.0f} KiB | {'pass' if c['passed'] else 'FAIL'} |")
print()
ms = lambda v: "none" if v is None else f"{v:.0f} ms"
print(f"While they ran, {r['api_failures']} of the api probes failed; it answered in {ms(r['api_p50_ms'])} at the median and "
      f"{ms(r['api_max_ms'])} at worst; {r['containers_left']} step containers were left; the flood's line of invalid "
      f"UTF-8 and NUL bytes was stored: {'yes' if r['flood_bad_bytes_stored'] else 'NO'}, its exit code 3 kept: "
      f"{'yes' if r['flood_exit_code_kept'] else 'NO'}; the workers' peak memory: {sys.argv[2]} MiB.")
PY
    cat "$dir/hostile.md"
  else
    echo "gantry-loadtest hostile failed before its report ($status)" > "$dir/hostile.md"
  fi
fi

# The scenarios that are tests of the suite (real PostgreSQL, RabbitMQ and Docker), run here by
# name so that the table shows them beside the live ones.
tests_of() { # scenario, description, nextest filter expression
  local summary status=pass
  summary=$(cargo nextest run --workspace --no-fail-fast -E "$3" 2>&1 | grep -E "^ *Summary" | tail -1 | sed 's/^ *//') || true
  if [ -z "$summary" ] || ! grep -qE " [1-9][0-9]* passed" <<<"$summary" || grep -qE "failed|timed out" <<<"$summary"; then
    status=FAIL; failed=1
  fi
  printf '| %s | %s | `%s` | %s | %s |\n' "$1" "$2" "$3" "$summary" "$status" >> "$dir/tests.md"
  tail -1 "$dir/tests.md"
}
if want tests && cargo nextest --version >/dev/null 2>&1; then
  log "S9–S20 as their tests"
  tests_of S9 "a step past its timeout" 'test(a_step_past_its_timeout)'
  tests_of S10 "20 clients × 10 If-Match increments" 'test(concurrent_increments_with_if_match)'
  tests_of S11 "parallel steps: disjoint keys, one key, structural conflicts" 'binary(worker) & test(/^properties::/)'
  tests_of S12 "container hardening from outside and inside" 'test(a_step_container_is_hardened)'
  tests_of S14 "every route × no, bad, revoked token, viewer, other project's operator" 'binary(api) & (test(/^access::/) | test(/^auth::/))'
  tests_of S15 "hostile bodies and filters" 'binary(api) & (test(/^bodies::/) | test(a_nul_character))'
  tests_of S16 "unsafe file paths: .., absolute, symlinked parents" 'test(/path_safety|unsafe_file_path|symlinked_parent/)'
  tests_of S17 "malicious step_result.json: symlink, FIFO, oversized, invalid" 'test(/symlinked_result|symlinks_fifos_oversized|invalid_json_left_by_the_action|unreadable_received_version/)'
  tests_of S18 "a chatty step stored in order up to the cap" 'test(a_chatty_steps_output)'
  tests_of S19 "secrets echoed plain, split, in base64: masked" 'binary(worker) & (test(/^secrets::/) | test(/masked_with_the_step_secrets|withheld/))'
  tests_of S20 "encryption at rest, tampering, key rotation" 'binary(api) & (test(/^encryption::/) | test(/^key_rotation::/))'
fi

# I6: the canary secret the steps printed is in no process's log and nowhere in the database,
# plain or in base64 (the change logs read through the api were checked by each scenario).
i6=""
if [ -s "$dir/rows.md" ]; then
  encoded=$(printf %s "$canary" | base64)
  pg_dump -h 127.0.0.1 -p $pg_port -U postgres "$database" > "$dir/dump.sql"
  leaks=$(cat "$dir"/api*.log "$dir"/worker*.log "$dir/dump.sql" | grep -c -e "$canary" -e "$encoded" || true)
  printed=$(grep -c "token=\*\*\*" "$dir/dump.sql" || true)
  rm -f "$dir/dump.sql"
  if [ "$leaks" -ne 0 ] || [ "$printed" -eq 0 ]; then failed=1; i6=FAIL; else i6=pass; fi
  log "I6: the canary in $leaks log or database lines; $printed masked lines stored: $i6"
fi

{
  echo "# Reliability"
  echo
  echo "Measured by \`make reliability\` (\`scripts/reliability.sh$([ "$mode" = quick ] && echo " quick")\`) on $(date -u +%Y-%m-%dT%H:%M:%SZ), debug"
  echo "builds: two gantry-api and three gantry-worker processes (built with the \`failpoints\` feature"
  echo "for S3) with a PostgreSQL and a RabbitMQ of the suite's own, all under supervisord (restart on"
  echo "exit). Each change has two steps: the first adds a key of its own attempt to the environment's"
  echo "properties, the second prints a secret. The changes go to both apis in turn with an"
  echo "\`Idempotency-Key\` each, retried on the other api when one fails or answers 503. After each"
  echo "scenario \`gantry-loadtest reliability\` checks the invariants of ../shared/RELIABILITY.md:"
  echo
  echo "* lost: I1, an accepted change that never ended; duplicated: a step finished twice or a change"
  echo "  with extra steps; overlapping: I3, two attempts of a step running at once, each from the"
  echo "  moment its container was given the step (step_containers) to the container's die event;"
  echo "* I4: every succeeded step's patch in exactly one property version, no step with two, the"
  echo "  versions contiguous from 1 and the last one the current document;"
  echo "* 503 / other 5xx: submissions answered 503 (the database away; retried) and any other 5xx (I7);"
  echo "* drained: I5, no unpublished outbox row, no lease, no step container left; dead-lettered:"
  echo "  messages that reached a dead-letter queue meanwhile (only S8's poison may);"
  echo "* recovery: from the last submission to every change final; faults: kills, crashes, stops."
  echo
  if [ -s "$dir/rows.md" ]; then
    echo "| # | scenario | submitted | accepted | final | succeeded | lost | duplicated | overlapping | I4 | recovery | peak outbox | worker peak memory | faults | 503 / other 5xx | drained | verdict |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    cat "$dir/rows.md"
    echo
  fi
  if want hostile; then
    echo "## Hostile steps (S9, S13, S18)"
    echo
    echo "\`gantry-loadtest hostile\`: the steps below run at once against the same stack, one step per"
    echo "change; one is killed from outside with \`docker kill\` once it runs. Each must end \`error\` with"
    echo "its reason in its log, its container removed, the api answering \`GET /api/projects\` (probed every"
    echo "100 ms) throughout. The workers' memory is sampled every second."
    echo
    cat "$dir/hostile.md"
    echo
  fi
  if want tests; then
    echo "## The scenarios that are tests"
    echo
    echo "Run by name with \`cargo nextest run -E <filter>\` (real PostgreSQL, RabbitMQ and Docker):"
    echo
    echo "| # | scenario | tests | result | verdict |"
    echo "|---|---|---|---|---|"
    cat "$dir/tests.md"
    echo
  fi
  if [ -n "$i6" ]; then
    echo "## I6"
    echo
    echo "A canary secret the steps printed plain and in base64 was found in $leaks lines of the"
    echo "processes' logs and a dump of the database, and in no log line read back through the api;"
    echo "$printed stored lines show it masked: **$i6**."
  fi
  echo "## What this suite does not show"
  echo
  echo "* One host: every process shares one Docker engine, so a later attempt removes an earlier"
  echo "  attempt's container itself; on separate hosts the earlier container is stopped by its own"
  echo "  worker when its heartbeat finds the lease lost, or by the sweeper of its host's next worker."
  echo "  Network partitions between hosts: make cluster (docs/cluster.md)."
  echo "* One RabbitMQ node: the quorum queues' replication across nodes is not exercised."
  echo "* A step's home volume has no size limit (the scratch directory /tmp is a tmpfs with one):"
  echo "  a step can fill the engine's disk through \$HOME. Docker offers a volume quota only on"
  echo "  xfs with project quotas."
  echo "* Debug builds, on the two cores of this machine: the times are this suite's, not the"
  echo "  benchmark's (docs/benchmarks.md)."
} > "$dir/report.md"
if [ "$mode" = full ] && [ -z "${RELIABILITY_ONLY:-}" ]; then
  cp "$dir/report.md" docs/reliability.md
  log "wrote docs/reliability.md"
else
  cat "$dir/report.md"
fi
exit $failed
}
