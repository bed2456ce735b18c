#!/usr/bin/env bash
# `make test-stack`: the compose stack on a private Docker engine, checked from outside.
#   1. install Debian's Docker engine, Compose v2 and buildx when missing (scripts/stack/engine.sh)
#   2. start a private dockerd; it is stopped again on exit, whatever happens
#   3. make the local base image (debootstrap, no registry needed), unless it is cached
#   4. scripts/stack/check_stack.py: build, up, checks, teardown, build/stack/report.json
# Images and the base stay in the engine's data root between runs (STACK_DOCKER_ROOT, default
# /var/lib/sigmaserve-stack/docker); STACK_FRESH=1 deletes it first for a cold run.
# PYTHON runs the checks (the project's .venv: sigmaserve, grpcio, Pillow, prometheus-client).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/build/stack"
PYTHON=${PYTHON:-$root/.venv/bin/python}
BASE_IMAGE=${STACK_BASE_IMAGE:-sigmaserve-local/python:3.11-bookworm}
export STACK_DOCKER_ROOT=${STACK_DOCKER_ROOT:-/var/lib/sigmaserve-stack/docker}
export STACK_LOG_DIR="$out"
mkdir -p "$out"
rm -f "$out/report.json" "$out/prelude.json"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

t=$(now)
"$here/engine.sh" install
install_s=$(since "$t")

if [ "${STACK_FRESH:-0}" = "1" ]; then
  "$here/engine.sh" stop
  echo "[stack] STACK_FRESH=1: removing $STACK_DOCKER_ROOT" >&2
  rm -rf "$STACK_DOCKER_ROOT"
fi
t=$(now)
eval "export $("$here/engine.sh" start)"
trap '"$here/engine.sh" stop' EXIT
engine_s=$(since "$t")

t=$(now)
"$here/base_image.sh" "$BASE_IMAGE"
base_s=$(since "$t")

printf '{"engine install": %s, "engine start": %s, "base image": %s}\n' \
  "$install_s" "$engine_s" "$base_s" >"$out/prelude.json"
"$PYTHON" "$here/check_stack.py" --base-image "$BASE_IMAGE" --out "$out" --prelude "$out/prelude.json"
