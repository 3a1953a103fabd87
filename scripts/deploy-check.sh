#!/usr/bin/env bash
# Validates the deployment files without an engine or a cluster (part of make test):
#   deploy/kubernetes   every manifest against the Kubernetes 1.31 schemas, strictly (unknown
#                       fields are errors), with kubernetes-validate from PyPI; KEDA's kinds have
#                       no schema there and are checked by deploy_check.py
#   deploy/compose      against the Compose file schema with docker-compose config (Debian's)
#   both                the cross-references no schema sees (scripts/deploy_check.py)
# Each validator is first shown a broken file, which it must refuse.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.local/venv
version=1.37.0
kubernetes=1.31.0
# shellcheck source=lib/supervised.sh
. scripts/lib/supervised.sh # log, as_root, ensure_package
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# (Not `pip show | grep -q`: grep's early exit fails the pipeline under pipefail, and the
# package was installed again on every run.)
installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null || true)
if [ "$installed" != "$version" ]; then
  log "installing kubernetes-validate $version into $venv"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$version"
fi
ensure_package docker-compose docker-compose

scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
validate() { "$venv/bin/kubernetes-validate" --strict --quiet --no-warn -k "$kubernetes" "$@"; }

sed 's/containerPort: 3000/containerPortt: 3000/' deploy/kubernetes/api.yaml >"$scratch/broken.yaml"
! validate "$scratch/broken.yaml" >/dev/null 2>&1 || die "kubernetes-validate accepted an unknown field"
mapfile -t manifests < <(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml ! -path '*/keda/*' | sort)
validate "${manifests[@]}"
log "${#manifests[@]} Kubernetes manifest files valid against the $kubernetes schemas"

cp deploy/compose/haproxy.cfg deploy/compose/rabbitmq.conf "$scratch/"
sed "s/    restart: unless-stopped/    restartt: unless-stopped/" deploy/compose/compose.yaml >"$scratch/compose.yaml"
! docker-compose -f "$scratch/compose.yaml" config -q >/dev/null 2>&1 || die "docker-compose accepted an unknown service key"
docker-compose -f deploy/compose/compose.yaml config -q
log "deploy/compose/compose.yaml valid"

"$venv/bin/python" scripts/deploy_check.py
