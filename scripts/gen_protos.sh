#!/usr/bin/env bash
# Regenerates the committed Python gRPC modules from protos/.
#   scripts/gen_protos.sh          write them into python/sigmaserve/v1/ and python/sigmaserve/_oip/
#   scripts/gen_protos.sh --check  regenerate into a temp dir and fail if the committed ones drift
# The Open Inference Protocol facade (package `inference`) is generated into the private package
# sigmaserve._oip, never imported by the client library (tritonclient registers the same symbols).
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
python -m grpc_tools.protoc -I protos/vendor \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  protos/vendor/sigmaserve/_oip/*.proto
touch "$out/sigmaserve/v1/__init__.py" "$out/sigmaserve/_oip/__init__.py"
if [ "${1:-}" = "--check" ]; then
  stale=0
  for pkg in v1 _oip; do
    if ! diff -r -x __pycache__ "$out/sigmaserve/$pkg" "python/sigmaserve/$pkg"; then
      stale=1
    fi
  done
  if [ "$stale" = 1 ]; then
    echo "generated protobuf modules are stale: run 'make protos' and commit" >&2
    exit 1
  fi
  echo "protobuf modules up to date"
fi
