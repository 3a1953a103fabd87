# Sourced by demo.sh and bench.sh: the local stack's settings and the start of gantry-api and
# gantry-worker in the background (state, logs and pid files under .local/; make stop stops them).

# Exports the local settings (a generated admin token and encryption key kept in .local/).
stack_env() {
  mkdir -p .local
  [ -s .local/admin-token ] || head -c 32 /dev/urandom | base64 | tr -d '/+=' > .local/admin-token
  [ -s .local/encryption-key ] || head -c 32 /dev/urandom | base64 > .local/encryption-key
  chmod 600 .local/admin-token .local/encryption-key
  export GANTRY_CONFIG_DIR=$PWD/configuration
  export GANTRY_API__ADMIN_TOKEN=$(cat .local/admin-token)
  export GANTRY_ENCRYPTION__KEY=$(cat .local/encryption-key)
  export GANTRY_WORKER__GIT_CACHE_DIR=$PWD/.local/git-cache
  export GANTRY_URL=http://127.0.0.1:3000 GANTRY_TOKEN=$GANTRY_API__ADMIN_TOKEN
}

# Migrates the `gantry` database, then (re)starts the api and worker of the binaries in $1 and
# waits until the api is ready.
stack_start() {
  local bin=$1
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'gantry'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE gantry"
  "$bin/gantry-api" migrate
  bash scripts/stop.sh >/dev/null
  local name
  for name in api worker; do
    nohup "$bin/gantry-$name" >> ".local/$name.log" 2>&1 &
    echo $! > ".local/$name.pid"
  done
  for _ in $(seq 1 100); do curl -fs http://127.0.0.1:3000/ready >/dev/null && break; sleep 0.2; done
  curl -fs http://127.0.0.1:3000/ready >/dev/null || { echo "gantry-api did not become ready; see .local/api.log" >&2; return 1; }
  echo "==> gantry-api (pid $(cat .local/api.pid)) and gantry-worker (pid $(cat .local/worker.pid)) running; logs in .local/"
}
