#!/usr/bin/env bash
# The whole test suite against the real PostgreSQL, RabbitMQ and Docker engine (make test).
# Every test makes its own database and RabbitMQ prefix, so tests run in parallel. Then
# the deployment files are validated (scripts/deploy-check.sh), schemathesis fuzzes the API against
# its own OpenAPI document (scripts/schemathesis.sh), and the quick subset of the fault suite runs
# (scripts/reliability.sh quick, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
status=0
# The compose file and the Kubernetes manifests against their schemas (no engine, no cluster).
bash scripts/deploy-check.sh || status=$?
bash scripts/schemathesis.sh || status=$?
# The fault suite's subset (S1, S2, S4, S7, S8 against 2 apis + 3 workers under supervisord).
bash scripts/reliability.sh quick || status=$?
echo "==> make test took $(( $(date +%s) - start ))s of test time"
exit $status
