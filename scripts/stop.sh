#!/usr/bin/env bash
# Stops the api and worker that `make demo` started.
set -euo pipefail
cd "$(dirname "$0")/.."
for name in worker api; do
  pidfile=.local/$name.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    echo "==> stopped gantry-$name"
  fi
  rm -f "$pidfile"
done
