#!/usr/bin/env bash
# Property-based API testing (part of make test): schemathesis, from PyPI into .local/venv, reads
# the API's own OpenAPI document and sends generated requests, valid and invalid, to every
# operation of a gantry-api and gantry-worker running on a fresh database, with the admin token.
# It fails on any 5xx, any response outside the documented statuses, media types or schemas.
# Stateful links are off; the run is bounded (examples per operation, and a hard time limit).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
version=4.32.5
venv=$root/.local/venv
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-25}
port=${SCHEMATHESIS_PORT:-3099}
database=gantry_schemathesis
log() { printf '==> %s\n' "$*"; }

if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  log "installing schemathesis $version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

cargo build --quiet -p gantry-api -p gantry-worker --bins
bin=$root/target/debug
export GANTRY_CONFIG_DIR=$root/configuration
export GANTRY_DATABASE__URL=postgres://postgres@127.0.0.1:5432/$database
export GANTRY_API__PORT=$port
export GANTRY_AMQP__PREFIX=schemathesis_
export GANTRY_WORKER__METRICS_PORT=0
# The fuzzer sends requests without (or with broken) credentials on purpose; the limit on failed
# authentications would soon answer everything from this address 429.
export GANTRY_API__AUTH_FAILURES_PER_MINUTE=1000000
export GANTRY_WORKER__GIT_CACHE_DIR=$root/.local/schemathesis-git-cache
token=$(grep -oP 'admin_token: "\K[^"]+' configuration/local.yaml)
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $database"
"$bin/gantry-api" migrate

logs=$root/.local/schemathesis
mkdir -p "$logs"
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true
}
trap cleanup EXIT
"$bin/gantry-api" > "$logs/api.log" 2>&1 & pids+=($!)
"$bin/gantry-worker" > "$logs/worker.log" 2>&1 & pids+=($!)
base=http://127.0.0.1:$port
for _ in $(seq 1 100); do curl -fs "$base/ready" >/dev/null && break; sleep 0.2; done

# The document's examples name project `hello` and environment `dev`; a change of the hello
# example (run to its end) gives the ids the other routes are tried with, so the generated
# requests get past the 404s to the documents they are checked against.
api() { # method, path[, body] -> the response body
  curl -fsS -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/vnd.api+json' \
    "$base$2" ${3:+-d "$3"}
}
field() { python3 -c "import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
repo=$root/.local/repos/schemathesis-hello
rm -rf "$repo" && mkdir -p "$repo" && cp -a examples/hello/. "$repo/"
git -C "$repo" init -q -b main && git -C "$repo" add -A
git -C "$repo" -c user.name=gantry -c user.email=gantry@gantry.invalid commit -qm hello
properties=$(api POST /api/projects '{"data":{"attributes":{"code":"hello","name":"Hello"}}}' \
  | field 'd["data"]["relationships"]["properties"]["data"]["id"]')
api POST /api/projects/hello/environments '{"data":{"attributes":{"code":"dev","name":"Development"}}}' >/dev/null
remote=$(api POST /api/projects/hello/git_remotes "{\"data\":{\"attributes\":{\"name\":\"origin\",\"url\":\"$repo\"}}}" \
  | field 'd["data"]["id"]')
api PUT /api/secrets/deploy-keys '{"data":{"attributes":{"data":{"TOKEN":"s3cret"}}}}' >/dev/null
change=$(api POST /api/changes '{"data":{"attributes":{"project_code":"hello","environment_code":"dev","git_remote_name":"origin","git_rev":"main","action":"default"}}}' \
  | field 'd["data"]["id"]')
for _ in $(seq 1 300); do
  status=$(api GET "/api/changes/$change" | field 'd["data"]["attributes"]["status_code"]')
  case $status in success|error|cancelled) break ;; esac
  sleep 0.2
done
step=$(api GET "/api/changes/$change?include=steps" | field 'd["included"][0]["id"]')
log "fixtures: change $change ($status), step $step, properties $properties, git remote $remote"
cat > "$logs/schemathesis.toml" <<TOML
[[operations]]
include-path-regex = "^/api/changes/"
parameters = { "path.id" = "$change" }

[[operations]]
include-path-regex = "^/api/steps/"
parameters = { "path.id" = "$step" }

[[operations]]
include-path-regex = "^/api/properties/"
parameters = { "path.id" = "$properties" }

[[operations]]
include-path-regex = "/git_remotes/"
parameters = { "path.id" = "$remote" }
TOML

log "schemathesis $version: every operation, up to $max_examples generated cases each"
started=$(date +%s)
set +e
timeout 180 "$venv/bin/st" --no-color --config-file "$logs/schemathesis.toml" run "$base/api-docs/openapi.json" \
  --header "Authorization: Bearer $token" \
  --phases examples,coverage,fuzzing \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$max_examples" --seed 20261207 --workers 1 \
  --request-timeout 10 --suppress-health-check all \
  --report junit --report-dir "$logs" 2>&1 | tee "$logs/run.log" | tail -40
status=${PIPESTATUS[0]}
set -e
log "schemathesis took $(( $(date +%s) - started ))s (exit $status); report in $logs"
if grep -q 'panicked' "$logs/api.log" "$logs/worker.log"; then
  echo "error: a process panicked during the run (see $logs)" >&2
  grep -h 'panicked' "$logs/api.log" "$logs/worker.log" | head -5 >&2
  status=1
fi
exit "$status"
