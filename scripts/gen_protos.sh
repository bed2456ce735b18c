#!/usr/bin/env bash
# Regenerates the committed Python gRPC modules from protos/.
#   scripts/gen_protos.sh          write them into python/sigmaserve/v1/
#   scripts/gen_protos.sh --check  regenerate into a temp dir and fail if the committed ones drift
set -euo pipefail
cd "$(dirname "$0")/.."
out=python
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
python -m grpc_tools.protoc -I protos \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  protos/sigmaserve/v1/*.proto
touch "$out/sigmaserve/v1/__init__.py"
if [ "${1:-}" = "--check" ]; then
  if ! diff -r -x __pycache__ "$out/sigmaserve/v1" python/sigmaserve/v1; then
    echo "generated protobuf modules are stale: run 'make protos' and commit" >&2
    exit 1
  fi
  echo "protobuf modules up to date"
fi
