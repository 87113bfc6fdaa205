#!/usr/bin/env bash
# Prepares a REAL local Docker engine for the log-shipper integration tests.
#
#   scripts/docker-env.sh                  # ensure dockerd + test image (idempotent)
#   scripts/docker-env.sh restart-dockerd  # stop the running dockerd, start ours again
#
# Steps (each skipped when already done, so a second run takes ~1 s):
#   1. apt-get install docker.io busybox-static (and nats-server) if missing;
#      `apt-get update` runs only when something has to be installed.
#   2. If `docker info` fails, start dockerd in the background with
#        --storage-driver=vfs --iptables=false --bridge=none
#      (log: /tmp/natsmon-dockerd.log, pid: /tmp/natsmon-dockerd.pid) and wait
#      up to 60 s for `docker info`. Containers must use `--network host` or
#      `--network none` (there is no bridge).
#   3. If absent, build the image natsmon-test/nats:2.9.10 with `docker import`
#      from a hand-made rootfs: busybox-static (+ all applet symlinks in /bin),
#      /usr/local/bin/nats-server and the shared libraries it needs.
#      No registry is contacted. NATSMON_DOCKER_REBUILD=1 forces a rebuild.
#   4. Smoke check: `docker run --rm --network none IMAGE /bin/sh -c 'echo ok'`.
#
# Concurrent invocations (e.g. cargo-nextest running tests in parallel
# processes) are serialised with flock on /tmp/natsmon-docker-env.lock.
set -euo pipefail

IMAGE="natsmon-test/nats:2.9.10"
DOCKERD_LOG="/tmp/natsmon-dockerd.log"
DOCKERD_PIDFILE="/tmp/natsmon-dockerd.pid"
LOCK_FILE="/tmp/natsmon-docker-env.lock"
DOCKERD_FLAGS=(--storage-driver=vfs --iptables=false --bridge=none)
READY_TIMEOUT=60

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

T0=$(date +%s.%N)
log() { printf '==> [docker-env %5.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc 2>/dev/null || echo 0)" "$*"; }
die() {
  printf '\n!!! docker-env.sh FAILED: %s\n' "$*" >&2
  if [ -f "$DOCKERD_LOG" ]; then
    printf '!!! last lines of %s:\n' "$DOCKERD_LOG" >&2
    tail -n 30 "$DOCKERD_LOG" >&2 || true
  fi
  exit 1
}
BUILD_TMP=""
trap '[ -n "$BUILD_TMP" ] && rm -rf "$BUILD_TMP"' EXIT
trap 'die "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

# `bc` may be missing; make `log` robust without it.
if ! command -v bc >/dev/null 2>&1; then
  log() { printf '==> [docker-env] %s\n' "$*"; }
fi

# --- serialise concurrent runs ---------------------------------------------
exec 9>"$LOCK_FILE"
if command -v flock >/dev/null 2>&1; then
  flock -w 600 9 || die "could not take $LOCK_FILE within 600 s"
fi

# --- 1. packages ------------------------------------------------------------
nats_bin() {
  if [ -n "${NATS_SERVER_BIN:-}" ]; then echo "$NATS_SERVER_BIN"; return; fi
  if [ -x /usr/sbin/nats-server ]; then echo /usr/sbin/nats-server; return; fi
  command -v nats-server 2>/dev/null || true
}

ensure_packages() {
  local need=()
  command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || need+=(docker.io)
  # busybox-static provides /bin/busybox; the dynamic `busybox` package is not
  # usable inside the libc-less image, so check the package itself.
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' || need+=(busybox-static)
  [ -n "$(nats_bin)" ] || need+=(nats-server)
  if [ "${#need[@]}" -gt 0 ]; then
    log "installing missing packages: ${need[*]}"
    $SUDO apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" \
      || die "apt-get install ${need[*]} failed"
  fi
  command -v docker >/dev/null 2>&1 || die "no docker CLI on PATH after installing docker.io"
  [ -x "$(command -v dockerd || echo /usr/sbin/dockerd)" ] || die "dockerd not found after installing docker.io"
}

DOCKER=(docker)
[ -n "$SUDO" ] && DOCKER=(sudo docker)

docker_ok() { "${DOCKER[@]}" info >/dev/null 2>&1; }

# --- 2. dockerd ---------------------------------------------------------------
dockerd_pids() {
  # pid files of ours and of any other dockerd (dockerd writes /var/run/docker.pid)
  local p
  for f in "$DOCKERD_PIDFILE" /var/run/docker.pid; do
    [ -f "$f" ] || continue
    p=$(cat "$f" 2>/dev/null || true)
    if [ -n "$p" ] && [ -d "/proc/$p" ] && grep -q dockerd "/proc/$p/comm" 2>/dev/null; then echo "$p"; fi
  done | sort -u || true
}

stop_dockerd() {
  local pids
  pids=$(dockerd_pids)
  [ -z "$pids" ] && return 0
  log "stopping dockerd (pid $(echo $pids))"
  # shellcheck disable=SC2086
  $SUDO kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 150); do            # up to 30 s (it stops running containers)
    local alive=""
    for p in $pids; do [ -d "/proc/$p" ] && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.2
  done
  for p in $pids; do
    if [ -d "/proc/$p" ]; then log "dockerd $p ignored SIGTERM, sending SIGKILL"; $SUDO kill -KILL "$p" 2>/dev/null || true; fi
  done
  sleep 0.2
  rm -f "$DOCKERD_PIDFILE" 2>/dev/null || $SUDO rm -f "$DOCKERD_PIDFILE"
}

start_dockerd() {
  local dockerd t_start
  dockerd=$(command -v dockerd || echo /usr/sbin/dockerd)
  # A dockerd that exists but does not answer (e.g. auto-started with the
  # overlay driver and wedged) is replaced by ours.
  if [ -n "$(dockerd_pids)" ]; then
    log "a dockerd process exists but 'docker info' fails; replacing it"
    stop_dockerd
  fi
  log "starting: $dockerd ${DOCKERD_FLAGS[*]} (log $DOCKERD_LOG)"
  t_start=$(date +%s)
  # setsid+nohup: survive the calling test process; fd 9 (the lock) and the
  # caller's stdout/stderr pipes must not be inherited, or callers would hang.
  $SUDO sh -c 'log=$1; pidf=$2; shift 2
    echo "--- $(date -u +%FT%TZ) starting $*" >>"$log"
    setsid nohup "$@" >>"$log" 2>&1 </dev/null &
    echo $! >"$pidf"' \
    sh "$DOCKERD_LOG" "$DOCKERD_PIDFILE" "$dockerd" "${DOCKERD_FLAGS[@]}" 9>&- \
    || die "could not launch dockerd"
  local pid
  pid=$(cat "$DOCKERD_PIDFILE" 2>/dev/null || true)
  for _ in $(seq 1 $((READY_TIMEOUT * 5))); do
    if docker_ok; then
      log "dockerd ready (pid ${pid:-?}) after $(( $(date +%s) - t_start )) s"
      return 0
    fi
    if [ -n "$pid" ] && [ ! -d "/proc/$pid" ]; then
      die "dockerd (pid $pid) exited during startup"
    fi
    sleep 0.2
  done
  die "'docker info' still failing ${READY_TIMEOUT} s after starting dockerd"
}

ensure_dockerd() {
  if docker_ok; then
    local drv
    drv=$("${DOCKER[@]}" info --format '{{.Driver}}' 2>/dev/null || true)
    log "dockerd already answering (storage driver: ${drv:-?})"
    return 0
  fi
  start_dockerd
}

# --- 3. image -----------------------------------------------------------------
build_image() {
  local nats root tmp lib
  nats=$(nats_bin)
  [ -n "$nats" ] && [ -x "$nats" ] || die "nats-server binary not found (set NATS_SERVER_BIN)"
  local ver
  ver=$("$nats" --version 2>&1 || true)
  case "$ver" in
    *2.9.10*) ;;
    *) log "WARNING: $nats reports '$ver', but the image is tagged $IMAGE" ;;
  esac
  local busybox=/bin/busybox
  [ -x "$busybox" ] || busybox=$(dpkg -L busybox-static | grep -E '/busybox$' | head -n1)
  [ -x "$busybox" ] || die "busybox-static binary not found"
  if ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked; need the static one from busybox-static"
  fi

  tmp=$(mktemp -d /tmp/natsmon-rootfs.XXXXXX)
  BUILD_TMP="$tmp"
  root="$tmp/rootfs"
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,tmp,root,proc,sys,dev,var/tmp}
  chmod 1777 "$root/tmp" "$root/var/tmp"

  cp "$busybox" "$root/bin/busybox"
  local n=0
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] && continue
    [ -e "$root/bin/$applet" ] || { ln -s busybox "$root/bin/$applet"; n=$((n + 1)); }
  done
  for must in sh echo sleep printf seq cat date yes head true kill; do
    [ -e "$root/bin/$must" ] || die "busybox lacks applet '$must'"
  done

  cp "$nats" "$root/usr/local/bin/nats-server"
  # Shared libraries (nothing to copy when nats-server is static).
  if ldd "$nats" >/dev/null 2>&1; then
    for lib in $(ldd "$nats" | grep -oE '/[^ ]+' | sort -u); do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  fi

  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

  log "importing $IMAGE (busybox + $n applet links, $nats, libs: $(cd "$root" && find lib* -type f 2>/dev/null | tr '\n' ' '))"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . \
    | "${DOCKER[@]}" import \
        --change 'CMD ["/usr/local/bin/nats-server"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --message "natsmon test image: busybox-static + $($nats --version 2>&1 | head -n1)" \
        - "$IMAGE" >/dev/null \
    || die "docker import failed"
  rm -rf "$tmp"
}

ensure_image() {
  if [ "${NATSMON_DOCKER_REBUILD:-0}" = 1 ]; then
    "${DOCKER[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
  fi
  if "${DOCKER[@]}" image inspect "$IMAGE" >/dev/null 2>&1; then
    log "image $IMAGE present"
  else
    local t
    t=$(date +%s)
    build_image
    log "built $IMAGE in $(( $(date +%s) - t )) s"
  fi
}

smoke() {
  local out
  out=$("${DOCKER[@]}" run --rm --network none --log-driver json-file "$IMAGE" /bin/sh -c 'echo ok' 2>&1) \
    || die "docker run $IMAGE failed: $out"
  [ "$out" = ok ] || die "docker run $IMAGE printed '$out' instead of 'ok'"
  log "smoke run ok"
}

# --- main -----------------------------------------------------------------------
case "${1:-ensure}" in
  ensure)
    ensure_packages
    ensure_dockerd
    ensure_image
    smoke
    ;;
  restart-dockerd)
    ensure_packages
    stop_dockerd
    if docker_ok; then
      die "docker still answers after stopping every dockerd we know of (pid files $DOCKERD_PIDFILE, /var/run/docker.pid); refusing to start a second one"
    fi
    start_dockerd
    ;;
  *)
    echo "usage: $0 [ensure|restart-dockerd]" >&2
    exit 2
    ;;
esac
log "done"
