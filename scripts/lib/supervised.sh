# Sourced by scripts/reliability.sh and scripts/cluster.sh (and, for log, as_root and
# ensure_package, by images.sh and deploy-check.sh): one supervisord (Debian's
# `supervisor`, the restart policy a user would give these processes) running a PostgreSQL and a
# RabbitMQ of the script's own beside the Gantry processes. The caller sets:
#   dir   logs and supervisord's files        run   the data directories (under /tmp)
# and calls, in order: supervised_prepare, supervised_header > conf, the *_program functions
# >> conf, then `supervisord -c conf`.

log() { printf '==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_package() { # command, Debian package
  command -v "$1" >/dev/null && return
  log "installing $2"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
rabbit_bin=/usr/lib/rabbitmq/bin

ctl() { supervisorctl -c "$dir/supervisord.conf" "$@"; }

# Shuts the supervisord of $dir down, with everything it runs, and waits until it has exited.
supervised_shutdown() {
  [ -e "$dir/supervisord.pid" ] && ctl shutdown >/dev/null 2>&1 || return 0
  for _ in $(seq 1 120); do [ -e "$dir/supervisord.pid" ] || break; sleep 0.5; done
}

# Stops what an interrupted run left, and makes fresh data directories and a database cluster
# that trusts the given network (besides loopback).
supervised_prepare() { # [trusted network]
  ensure_package supervisord supervisor
  supervised_shutdown
  rm -rf "$dir" && mkdir -p "$dir"
  as_root rm -rf "$run" && mkdir -p "$run/pg" "$run/rabbitmq" && chmod 755 "$run"
  as_root chown postgres "$run/pg" && as_root chown rabbitmq "$run/rabbitmq"
  as_root runuser -u postgres -- "$pg_bin/initdb" -D "$run/pg/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
  if [ -n "${1:-}" ]; then
    echo "host all all $1 trust" | as_root tee -a "$run/pg/data/pg_hba.conf" >/dev/null
  fi
}

supervised_header() {
  printf '[supervisord]\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nchildlogdir=%s\n' "$dir" "$dir" "$dir"
  printf '[unix_http_server]\nfile=%s/supervisor.sock\n' "$dir"
  printf '[supervisorctl]\nserverurl=unix://%s/supervisor.sock\n' "$dir"
  printf '[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n'
}

# How a program runs as `user`, in network namespace `netns` if one is given: supervisord's
# user= cannot be used there (entering a namespace needs root), so root enters it and setpriv
# (which execs, keeping the pid supervisord signals) becomes the user.
as_user_in() { # user, [netns] — prints the command prefix, or a user= line's value after "|"
  if [ -n "${2:-}" ]; then
    echo "ip netns exec $2 setpriv --reuid=$1 --regid=$1 --init-groups |"
  else
    echo "|$1"
  fi
}

postgres_program() { # port, listen addresses, [netns]
  local how; how=$(as_user_in postgres "${3:-}")
  # SIGQUIT is PostgreSQL's immediate shutdown (make reliability's S5).
  printf '[program:postgres]\ncommand=%s%s/postgres -D %s/pg/data -p %s -k %s/pg -c listen_addresses=%s -c max_connections=400 -c fsync=off\n' \
    "${how%%|*}" "$pg_bin" "$run" "$1" "$run" "$2"
  [ -z "${how#*|}" ] || printf 'user=%s\n' "${how#*|}"
  printf 'autorestart=true\nstartsecs=0\nstopsignal=QUIT\nredirect_stderr=true\nstdout_logfile=%s/postgres.log\n' "$dir"
}

rabbitmq_program() { # node name, AMQP port, distribution port, [netns]
  local how; how=$(as_user_in rabbitmq "${4:-}")
  # Without a configuration file RabbitMQ lets guest in from loopback only; the cluster's
  # processes connect from other hosts.
  printf 'loopback_users = none\n' > "$run/rabbitmq/rabbitmq.conf"
  printf '[program:rabbitmq]\ncommand=%s%s/rabbitmq-server\n' "${how%%|*}" "$rabbit_bin"
  [ -z "${how#*|}" ] || printf 'user=%s\n' "${how#*|}"
  printf 'environment=HOME="/var/lib/rabbitmq",RABBITMQ_NODENAME="%s",RABBITMQ_NODE_PORT="%s",RABBITMQ_DIST_PORT="%s",' "$1" "$2" "$3"
  printf 'RABBITMQ_MNESIA_BASE="%s/rabbitmq/mnesia",RABBITMQ_LOG_BASE="%s/rabbitmq/log",RABBITMQ_ENABLED_PLUGINS_FILE="%s/rabbitmq/plugins",' "$run" "$run" "$run"
  printf 'RABBITMQ_CONFIG_FILE="%s/rabbitmq/rabbitmq.conf",RABBITMQ_PID_FILE="%s/rabbitmq/pid"\n' "$run" "$run"
  printf 'autorestart=true\nstartsecs=0\nstopsignal=TERM\nstopwaitsecs=60\nredirect_stderr=true\nstdout_logfile=%s/rabbitmq.log\n' "$dir"
}

gantry_program() { # name, command, environment (supervisord's KEY="value",… form or "")
  printf '[program:%s]\ncommand=%s\n' "$1" "$2"
  [ -z "$3" ] || printf 'environment=%s\n' "$3"
  printf 'autostart=false\nautorestart=true\nstartsecs=0\nstopsignal=TERM\nstopwaitsecs=30\nredirect_stderr=true\nstdout_logfile=%s/%s.log\n' "$dir" "$1"
}

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "error: $name did not become ready in ${secs}s" >&2; return 1
}
