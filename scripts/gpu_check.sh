#!/usr/bin/env bash
# GPU check (under five minutes on one NVIDIA GPU): the worker's CUDA hand-off with the tiny
# random pipelines, then the noise engineer's CUDA noise comparison (scripts/gpu_check.py).
#   scripts/gpu_check.sh            # from the repo (uses .venv if present)
#   docker run --rm --gpus all --entrypoint bash sigmaserve/worker /opt/sigmaserve/scripts/gpu_check.sh
# Without a GPU it prints SKIP lines and exits 0; GPU_CHECK_REQUIRE=1 makes that a failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
if [ -x "$root/.venv/bin/python" ]; then PY="$root/.venv/bin/python"; else PY="${PYTHON:-python3}"; fi
require=()
[ "${GPU_CHECK_REQUIRE:-0}" = "1" ] && require=(--require-device)
status=0

echo "== environment"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PY" -c 'import torch, diffusers; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "| diffusers", diffusers.__version__)'

echo "== worker hand-off on CUDA (tiny SD, SDXL, SD3, Flux and Wan pipelines, service latents vs diffusers + CPU generators)"
start=$(date +%s)
timeout 240 "$PY" -m sigmaserve.worker.selfcheck --device cuda --steps 4 "${require[@]}" || status=1
echo "(worker check: $(( $(date +%s) - start )) s)"

echo "== CUDA noise comparison (scripts/gpu_check.py)"
if [ -f "$here/gpu_check.py" ]; then
  start=$(date +%s)
  timeout 120 "$PY" "$here/gpu_check.py" || status=1
  echo "(noise check: $(( $(date +%s) - start )) s)"
else
  echo "SKIP: scripts/gpu_check.py not present"
fi
echo "== gpu_check: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
