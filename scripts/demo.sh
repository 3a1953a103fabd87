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
# Re-runnable: what an earlier run created is kept (the database lives in .local/).
"$gantry" project show --project-code hello >/dev/null 2>&1 \
  || "$gantry" project create --project-code hello --name "Hello example"
"$gantry" environment show --project-code hello --environment-code dev >/dev/null 2>&1 \
  || "$gantry" environment create --project-code hello --environment-code dev --name Development
"$gantry" project list-git-remotes --project-code hello --output json | grep -q '"name": "origin"' \
  || "$gantry" project add-git-remote --project-code hello --name origin --git-url "$repo"
"$gantry" project list-git-remotes --project-code hello

echo; echo "==> properties before"
echo "-- project:"; "$gantry" project show-properties --project-code hello
echo "-- environment dev:"; "$gantry" environment show-properties --project-code hello --environment-code dev

echo; echo "==> running the default action (a live step tree on a terminal; exit 0 only on success)"
started=$(date +%s.%N)
set +e
"$gantry" change create --project-code hello --environment-code dev --git-remote-name origin \
  --git-rev main --action default --follow-logs
status=$?
set -e
finished=$(date +%s.%N)
# The newest change of the environment is the one just run (its id is the first "id" key).
id=$("$gantry" change list --project-code hello --environment-code dev --limit 1 --output json \
  | awk -F'"' '/"id": / && !found { print $4; found = 1 }')

echo; echo "==> step tree"; "$gantry" change show --change-id "$id"
echo; echo "==> log"; "$gantry" change show-logs --change-id "$id"
echo; echo "==> properties after"
echo "-- project:"; "$gantry" project show-properties --project-code hello
echo "-- environment dev:"; "$gantry" environment show-properties --project-code hello --environment-code dev
awk -v id="$id" -v a="$started" -v b="$finished" 'BEGIN { printf "\n==> change %s took %.2fs from create to final (as seen by the CLI)\n", id, b - a }'
echo "==> the api and worker keep running; stop them with: make stop"
exit $status
