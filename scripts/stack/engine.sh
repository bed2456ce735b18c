#!/usr/bin/env bash
# A private Docker engine for `make test-stack`: its own socket, data root and exec root, so it never
# touches a system engine. Needs root (CI and the dev machines run as root).
#
#   scripts/stack/engine.sh install   # Debian's docker.io (+ Compose v2 and buildx) if missing
#   scripts/stack/engine.sh start     # start dockerd; prints DOCKER_HOST=...
#   scripts/stack/engine.sh stop      # stop it (and its containerd)
#   scripts/stack/engine.sh env       # DOCKER_HOST for this engine
#
# Bookworm's docker.io (20.10) is the engine. Bookworm's docker-compose is Compose v1 (Python,
# 1.29), so Compose v2 and buildx come from Debian 13's packages (they depend only on libc6 >=
# 2.34): fetched from the host's own Debian mirror with a private apt state that only names
# trixie, so the host's apt sources and pins stay as they are.
set -euo pipefail

STACK_RUN=${STACK_RUN:-/run/sigmaserve-stack}
STACK_DOCKER_ROOT=${STACK_DOCKER_ROOT:-/var/lib/sigmaserve-stack/docker}
SOCKET="$STACK_RUN/docker.sock"
PIDFILE="$STACK_RUN/dockerd.pid"
LOG="${STACK_LOG_DIR:-$STACK_RUN}/dockerd.log"
TRIXIE_PACKAGES=(docker-compose docker-buildx)

log() { echo "[engine] $*" >&2; }

debian_mirror() {
  apt-get indextargets --format '$(REPO_URI)' 'Origin: Debian' 'Codename: bookworm' \
    'Created-By: Packages' 2>/dev/null | sort -u | head -1
}

have_compose_v2() { docker compose version >/dev/null 2>&1; }
have_buildx() { docker buildx version >/dev/null 2>&1; }

install() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v iptables >/dev/null || missing+=(iptables)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  if ! have_compose_v2 || ! have_buildx; then
    local state
    state=$(mktemp -d)
    chmod 755 "$state"  # apt downloads as _apt
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
    # The same Debian mirror the host's apt uses for bookworm, asked for trixie.
    local mirror
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || { apt-get update -qq; mirror=$(debian_mirror); }
    [ -n "$mirror" ] || { log "no Debian bookworm source in apt's configuration"; exit 1; }
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} trixie main" \
      >"$state/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache")
    log "installing ${TRIXIE_PACKAGES[*]} (Debian 13 packages: Compose v2, buildx)"
    apt-get "${opts[@]}" update -qq
    chown _apt "$state/debs" 2>/dev/null || true  # apt downloads as _apt where it can
    (cd "$state/debs" && apt-get "${opts[@]}" download "${TRIXIE_PACKAGES[@]}" >/dev/null)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "$state"/debs/*.deb >/dev/null
    rm -rf "$state"
  fi
  have_compose_v2 || { log "docker compose (v2) still missing"; exit 1; }
  log "$(docker --version); $(dockerd --version); $(docker compose version); buildx $(docker buildx version | awk '{print $2}')"
}

running() { [ -S "$SOCKET" ] && [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
  if running; then
    log "already running (pid $(cat "$PIDFILE"))"
  else
    mkdir -p "$STACK_RUN" "$STACK_DOCKER_ROOT" "$(dirname "$LOG")"
    # Docker's default bridge (docker0): refuse to fight another engine for it.
    if pgrep -x dockerd >/dev/null && ! running; then
      log "another dockerd runs on this machine (pid $(pgrep -x dockerd | tr '\n' ' ')); stop it first"
      exit 1
    fi
    log "starting dockerd (data root $STACK_DOCKER_ROOT, socket $SOCKET, log $LOG)"
    setsid dockerd \
      --host "unix://$SOCKET" \
      --data-root "$STACK_DOCKER_ROOT" \
      --exec-root "$STACK_RUN/exec" \
      --pidfile "$PIDFILE" \
      --storage-driver overlay2 \
      >"$LOG" 2>&1 </dev/null &
    local i
    for i in $(seq 1 120); do
      DOCKER_HOST="unix://$SOCKET" docker version >/dev/null 2>&1 && break
      if [ "$i" -eq 120 ]; then log "dockerd did not answer in 60 s"; tail -30 "$LOG" >&2; exit 1; fi
      sleep 0.5
    done
  fi
  echo "DOCKER_HOST=unix://$SOCKET"
}

stop() {
  if [ -f "$PIDFILE" ]; then
    local pid
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping dockerd (pid $pid)"
      kill -TERM "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then log "dockerd ignored SIGTERM: SIGKILL"; kill -KILL "$pid"; fi
    fi
    rm -f "$PIDFILE"
  fi
  # dockerd's own containerd exits with it; wait for it so the exec root can be reused.
  for _ in $(seq 1 20); do
    pgrep -f "containerd --config $STACK_RUN/exec" >/dev/null || break
    sleep 0.5
  done
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) echo "DOCKER_HOST=unix://$SOCKET" ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
