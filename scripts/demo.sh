#!/usr/bin/env bash
# make demo: starts gantry-api and gantry-worker in the background (state under .local/), creates
# the example project from examples/hello as a real Git repository, runs its `default` action and
# shows the step tree, the logs and the properties before and after. Exits 0 only on success.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/stack.sh
stack_env
bin=$root/target/debug
stack_start "$bin"

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
