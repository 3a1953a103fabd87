#!/usr/bin/env bash
# Builds the offline base runner image (DESIGN §5.1): FROM scratch + Debian's busybox-static + a
# static gantry-runner, with user gantry (10001) owning /opt/gantry. Needs no registry.
# The image carries a label with a hash of its build context; when an image with the same hash
# exists the docker build is skipped, so repeated `make test` runs stay fast.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${GANTRY_RUNNER_IMAGE:-gantry-runner:local}
TARGET=x86_64-unknown-linux-gnu
BUSYBOX=${BUSYBOX:-/bin/busybox}
LABEL=gantry.runner.content
BIN=target/$TARGET/release/gantry-runner

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

build_binary() {
  log "building a static gantry-runner"
  # --target keeps +crt-static off proc-macros and build scripts (they must stay dynamic).
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --quiet -p gantry-runner --target "$TARGET"
  # A dynamic executable has an interpreter (PT_INTERP) and NEEDED libraries; a static one neither.
  if readelf -lW "$BIN" | grep -q 'INTERP' || readelf -dW "$BIN" | grep -q '(NEEDED)'; then
    die "$BIN is dynamically linked; it would not run in a FROM scratch image"
  fi
}

assemble_context() { # dir
  local ctx=$1 rootfs=$1/rootfs
  [ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"
  mkdir -p "$rootfs"/{bin,usr/bin,usr/local/bin,etc,tmp} "$ctx/home/.gantry"
  cp "$BUSYBOX" "$rootfs/bin/busybox"
  for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
  done
  ln -s /bin/busybox "$rootfs/usr/bin/env" # for `#!/usr/bin/env …` scripts
  cp "$BIN" "$rootfs/usr/local/bin/gantry-runner"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
    'gantry:x:10001:10001:Gantry runner:/opt/gantry:/bin/sh' >"$rootfs/etc/passwd"
  printf '%s\n' 'root:x:0:' 'gantry:x:10001:' >"$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  cp deploy/runner/Dockerfile.offline "$ctx/Dockerfile"
}

content_hash() { # dir — names, modes, symlink targets and contents, independent of timestamps
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - -C "$1" . \
    | sha256sum | cut -c1-32
}

verify_image() {
  log "verifying $IMAGE"
  docker run --rm --network none --user 10001:10001 "$IMAGE" --help >/dev/null \
    || die "gantry-runner --help failed in $IMAGE"
  local out
  out=$(docker run --rm --network none --entrypoint /bin/sh "$IMAGE" -c 'id -u; stat -c %u /opt/gantry /opt/gantry/.gantry')
  [ "$out" = $'10001\n10001\n10001' ] \
    || die "expected uid 10001 owning /opt/gantry in $IMAGE, got: $out"
}

main() {
  build_binary
  # Global, not local: the EXIT trap runs after main returns.
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  assemble_context "$ctx"
  local hash existing
  hash=$(content_hash "$ctx")
  existing=$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
  if [ "$existing" = "$hash" ]; then
    log "$IMAGE is up to date ($LABEL=$hash)"
    return
  fi
  local previous
  previous=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  log "building $IMAGE"
  # The classic builder: this engine has no BuildKit CLI plugin, and the Dockerfile needs none.
  # Its output (with a deprecation notice) is only shown when the build fails.
  local out
  if ! out=$(DOCKER_BUILDKIT=0 docker build --network none --label "$LABEL=$hash" \
    -t "$IMAGE" "$ctx" 2>&1); then
    printf '%s\n' "$out" >&2
    die "docker build of $IMAGE failed"
  fi
  verify_image
  # The replaced image is dangling now; it stays only while step images still build on it.
  [ -z "$previous" ] || docker image rm "$previous" >/dev/null 2>&1 || true
  log "built $IMAGE ($LABEL=$hash)"
}

main "$@"
