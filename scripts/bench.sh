#!/usr/bin/env bash
# make bench: builds the api, the worker and the loadtest in release mode, (re)starts the api and a
# worker running 8 steps at once in the background (state under .local/, like make demo; stop
# them with make stop), waits until the api is ready, then runs `gantry-loadtest bench`, which
# measures the raw limits of this machine and every Gantry scenario and writes
# docs/benchmarks.md, docs/benchmarks-latency.png and docs/benchmarks.json.
# BENCH_SIZE=tiny|small|medium (default medium) sets the size of the run; BENCH_RUNS (default 3)
# how often every scenario runs (each comparison row is then the median run, with the spread).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/stack.sh
stack_env
export GANTRY_WORKER__CONCURRENCY=8

echo "==> building gantry-api, gantry-worker and gantry-loadtest (release)"
cargo build --release --quiet -p gantry-api -p gantry-worker -p gantry-loadtest --bins
stack_start "$root/target/release"
echo "==> the worker runs 8 steps at once (release build)"

echo "==> gantry-loadtest bench --size ${BENCH_SIZE:-medium} --runs ${BENCH_RUNS:-3}"
started=$(date +%s)
# The create scenario stops the worker (SIGSTOP) for its api-alone loops and continues it after.
"$root/target/release/gantry-loadtest" bench --size "${BENCH_SIZE:-medium}" --runs "${BENCH_RUNS:-3}" \
  --planner-pid "$(cat .local/worker.pid)" --out docs
echo "==> the bench took $(( $(date +%s) - started ))s; results in docs/benchmarks.md"
echo "==> the api and worker keep running; stop them with: make stop"
