#!/usr/bin/env bash
# Installs (Debian packages) and starts what Gantry needs on this host when it is missing:
# PostgreSQL, RabbitMQ, a Docker engine and busybox-static (for the offline runner image).
# Idempotent: running it again on a ready machine only checks.
set -euo pipefail

log() { printf '==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
need_pkg() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "error: $name did not become ready in ${secs}s" >&2; return 1
}

# fonts-dejavu-core: the font of the benchmark plot (gantry-loadtest).
need_pkg git curl busybox-static ca-certificates fonts-dejavu-core
# Python with venv: schemathesis (make test) is installed from PyPI into .local/venv.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need_pkg python3 python3-venv; fi

# PostgreSQL
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  need_pkg postgresql postgresql-client
  if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then echo "error: no PostgreSQL cluster found" >&2; exit 1; fi
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  # Gantry's local and test configuration uses trust auth on loopback for user postgres.
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  log "starting PostgreSQL $ver"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_for PostgreSQL 30 pg_isready -h 127.0.0.1 -p 5432 -q
fi

# RabbitMQ
amqp_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! amqp_up; then
  need_pkg rabbitmq-server
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for RabbitMQ 90 amqp_up
  wait_for RabbitMQ 60 as_root rabbitmqctl await_startup
fi

# Docker engine (no bridge network on these hosts; step containers use --network none)
if ! docker info >/dev/null 2>&1; then
  need_pkg docker.io
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    mkdir -p /var/log
    as_root sh -c 'nohup dockerd --bridge=none --iptables=false >/var/log/gantry-dockerd.log 2>&1 &'
    wait_for "Docker engine" 60 docker info
  fi
fi
log "services ready: PostgreSQL, RabbitMQ, Docker"
