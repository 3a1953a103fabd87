#!/usr/bin/env bash
# make images: gantry-api:local and gantry-worker:local from deploy/images/Dockerfile, offline
# (no image registry): the base, gantry-base:local, is a minimal Debian bookworm made here with
# debootstrap from the Debian archive and imported; the binaries are this checkout's release
# builds. Then each image is checked: it runs as 10001, and its health check turns healthy
# against this machine's PostgreSQL and RabbitMQ (host network, a database of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
{
root=$PWD
BASE=gantry-base:local
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=ca-certificates,git,openssh-client,curl
RECIPE="debootstrap minbase $SUITE $PACKAGES v1" # changing it rebuilds the base

# shellcheck source=lib/supervised.sh
. scripts/lib/supervised.sh # log, as_root, ensure_package
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

build_base() {
  if [ "$(docker image inspect -f '{{index .Config.Labels "gantry.base.recipe"}}' "$BASE" 2>/dev/null)" = "$RECIPE" ]; then
    log "$BASE is up to date"; return
  fi
  ensure_package debootstrap debootstrap
  local rootfs; rootfs=$(mktemp -d /tmp/gantry-base.XXXXXX)
  log "debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR"
  as_root debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; die "debootstrap failed (log: $rootfs.log)"; }
  # What a server image does not need: package caches and lists, documentation, locales.
  as_root rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
    "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/usr/share/locale "$rootfs"/var/log/*
  log "importing $BASE"
  as_root tar -C "$rootfs" -c . | docker import \
    --change "LABEL gantry.base.recipe=\"$RECIPE\"" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  as_root rm -rf "$rootfs" "$rootfs.log"
}

build_images() {
  log "building release gantry-api and gantry-worker"
  cargo build --release --quiet -p gantry-api -p gantry-worker
  local ctx; ctx=$(mktemp -d /tmp/gantry-images.XXXXXX)
  mkdir -p "$ctx/bin" "$ctx/configuration"
  # Without their line tables (kept in target/ for profiling): a tenth of the size.
  for binary in gantry-api gantry-worker; do
    strip --strip-debug -o "$ctx/bin/$binary" "target/release/$binary"
  done
  install -m 0644 configuration/base.yaml configuration/production.yaml "$ctx/configuration/"
  for target in api worker; do
    log "building gantry-$target:local"
    docker build --quiet --target "$target" --build-arg BASE="$BASE" -t "gantry-$target:local" \
      -f deploy/images/Dockerfile "$ctx" >/dev/null
  done
  rm -rf "$ctx"
}

# Settings for a check against this machine's services, on the host network.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

check_env() { # database, api port, worker metrics port
  printf '%s\n' "GANTRY_DATABASE__URL=postgres://postgres@127.0.0.1:5432/$1" \
    "GANTRY_AMQP__PREFIX=$1_" "GANTRY_API__ADMIN_TOKEN=images-check-admin-token" \
    "GANTRY_ENCRYPTION__KEY=$(head -c 32 /dev/urandom | base64)" \
    "GANTRY_API__PORT=$2" "GANTRY_WORKER__METRICS_PORT=$3" "GANTRY_WORKER__RUNNER_NETWORK=none" \
    "GANTRY_WORKER__ROLES=planner,results"
}

wait_healthy() { # container
  for _ in $(seq 1 60); do
    case "$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)" in
      healthy) return 0 ;;
      unhealthy) break ;;
    esac
    [ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ] || break
    sleep 1
  done
  docker logs --tail 20 "$1" >&2 || true
  return 1
}

check_cleanup() {
  docker rm -f gantry-images-api gantry-images-worker >/dev/null 2>&1 || true
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $check_db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -f "$check_env_file"
}

check_images() {
  for target in api worker; do
    local user; user=$(docker image inspect -f '{{.Config.User}}' "gantry-$target:local")
    [ "$user" = 10001:10001 ] || die "gantry-$target:local runs as '$user', not 10001:10001"
  done
  docker run --rm --network none gantry-api:local --version >/dev/null || die "gantry-api --version failed in its image"
  # The api (migrating a database of its own first) and a worker without the runner role (no
  # Docker socket needed) on the host network: both health checks must turn healthy.
  local db="gantry_images_check_$$" env api_port metrics_port; env=$(mktemp)
  api_port=$(free_port); metrics_port=$(free_port)
  check_env "$db" "$api_port" "$metrics_port" >"$env"
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" >/dev/null
  check_db=$db check_env_file=$env
  trap check_cleanup EXIT
  docker run --rm --network host --env-file "$env" gantry-api:local migrate >/dev/null
  docker run -d --name gantry-images-api --network host --env-file "$env" gantry-api:local >/dev/null
  docker run -d --name gantry-images-worker --network host --env-file "$env" gantry-worker:local >/dev/null
  wait_healthy gantry-images-api || die "gantry-api:local never turned healthy"
  wait_healthy gantry-images-worker || die "gantry-worker:local never turned healthy"
  local workers
  workers=$(curl -fsS -H "Authorization: Bearer images-check-admin-token" "http://127.0.0.1:$api_port/api/workers")
  grep -q '"status":"alive"' <<<"$workers" || die "the worker container did not report itself: $workers"
  log "gantry-api:local and gantry-worker:local run as 10001 and turn healthy; the worker reports itself"
}

build_base
build_images
check_images
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^gantry-(base|api|worker):local' | sed 's/^/    /'
}
