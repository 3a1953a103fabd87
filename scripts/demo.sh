#!/usr/bin/env bash
# make demo: starts gantry-api and gantry-worker in the background (state under .local/), creates
# the example project from examples/hello as a real Git repository, runs its `default` action and
# shows the step tree, the logs and the properties before and after. Exits 0 only on success.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mkdir -p .local
[ -s .local/admin-token ] || head -c 32 /dev/urandom | base64 | tr -d '/+=' > .local/admin-token
[ -s .local/encryption-key ] || head -c 32 /dev/urandom | base64 > .local/encryption-key
chmod 600 .local/admin-token .local/encryption-key
export GANTRY_CONFIG_DIR=$root/configuration
export GANTRY_API__ADMIN_TOKEN=$(cat .local/admin-token)
export GANTRY_ENCRYPTION__KEY=$(cat .local/encryption-key)
export GANTRY_WORKER__GIT_CACHE_DIR=$root/.local/git-cache
export GANTRY_URL=http://127.0.0.1:3000 GANTRY_TOKEN=$GANTRY_API__ADMIN_TOKEN
bin=$root/target/debug

psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'gantry'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE gantry"
"$bin/gantry-api" migrate

bash scripts/stop.sh >/dev/null
start() { # name, binary
  nohup "$2" >> ".local/$1.log" 2>&1 &
  echo $! > ".local/$1.pid"
}
start api "$bin/gantry-api"
start worker "$bin/gantry-worker"
for _ in $(seq 1 100); do curl -fs http://127.0.0.1:3000/ready >/dev/null && break; sleep 0.2; done
curl -fs http://127.0.0.1:3000/ready >/dev/null || { echo "gantry-api did not become ready; see .local/api.log" >&2; exit 1; }
echo "==> gantry-api (pid $(cat .local/api.pid)) and gantry-worker (pid $(cat .local/worker.pid)) running; logs in .local/"

repo=$root/.local/repos/hello
rm -rf "$repo" && mkdir -p "$repo" && cp -a examples/hello/. "$repo/"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=gantry-demo -c user.email=demo@gantry.invalid commit -qm "The hello example"

gantry=$bin/gantry
"$gantry" project-create hello --name "Hello example"
"$gantry" environment-create hello dev --name Development
"$gantry" remote-add hello origin "$repo"

echo; echo "==> properties before"
echo "-- project:"; "$gantry" show-properties hello
echo "-- environment dev:"; "$gantry" show-properties hello --environment dev

echo; echo "==> running the default action"
started=$(date +%s.%N)
set +e
out=$("$gantry" change-create hello dev --action default --rev main --wait)
status=$?
set -e
finished=$(date +%s.%N)
echo "$out"
id=$(echo "$out" | awk '/^change /{print $2; exit}')

echo; echo "==> step tree"; "$gantry" change-show "$id"
echo; echo "==> log"; "$gantry" change-logs "$id"
echo; echo "==> properties after"
echo "-- project:"; "$gantry" show-properties hello
echo "-- environment dev:"; "$gantry" show-properties hello --environment dev
awk -v id="$id" -v a="$started" -v b="$finished" 'BEGIN { printf "\n==> change %s took %.2fs from create to final (as seen by the CLI)\n", id, b - a }'
echo "==> the api and worker keep running; stop them with: make stop"
exit $status
