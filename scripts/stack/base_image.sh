#!/usr/bin/env bash
# The local stand-in for python:3.11-slim-bookworm when no image registry is reachable: Debian
# bookworm (minbase) from debootstrap's default mirror, with python3 and venv, imported as IMAGE.
# Its apt sources are bookworm, bookworm-updates and bookworm-security, like the official image's.
#
#   DOCKER_HOST=... scripts/stack/base_image.sh sigmaserve-local/python:3.11-bookworm
set -euo pipefail
image=${1:?usage: base_image.sh IMAGE}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "[base] $image already present" >&2
  exit 0
fi
root=$(mktemp -d /var/tmp/sigmaserve-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "[base] debootstrap --variant=minbase bookworm (python3, python3-venv)" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" \
  >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# debootstrap wrote one line with its default mirror; add the updates and security suites.
mirror=$(awk '$1 == "deb" {print $2; exit}' "$root/etc/apt/sources.list")
{
  echo "deb $mirror bookworm main"
  echo "deb $mirror bookworm-updates main"
  echo "deb ${mirror%/}-security bookworm-security main"
} >"$root/etc/apt/sources.list"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import \
  -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["python3"]' - "$image" >/dev/null
echo "[base] $image: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')" >&2
