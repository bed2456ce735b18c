"""``sigmaserve load-model SRC DEST``: put a local diffusers model folder where the worker reads it.

The worker never downloads: a model reaches the compose ``models`` volume or the Kubernetes
``sigmaserve-models`` claim through this command, run where the volume is mounted writable::

    docker compose run --rm -v /path/to/sd15:/src:ro load-model /src /models/sd
    # Kubernetes (deploy/k8s/jobs/model-loader.yaml): the Job waits for an upload, then installs it
    sigmaserve load-model --wait 3600 --move /models/.incoming/sd /models/sd

It checks that SRC is a diffusers pipeline folder (``model_index.json`` and one subfolder per
component it names), copies it beside DEST, compares every file's size, and only then renames the
copy into place, so a worker never sees half a model. Symbolic links are followed (a Hugging Face
cache snapshot is a folder of links). Files end up readable by every user (the worker runs as
uid 10001).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UPLOAD_MARKER = ".upload-complete"


class ModelFolderError(ValueError):
    """SRC is not a diffusers pipeline folder, or DEST cannot take it."""


@dataclass(frozen=True)
class Installed:
    dest: Path
    pipeline: str
    files: int
    bytes: int
    seconds: float

    def as_json(self) -> str:
        return json.dumps(
            {
                "dest": str(self.dest),
                "pipeline": self.pipeline,
                "files": self.files,
                "bytes": self.bytes,
                "seconds": round(self.seconds, 3),
            }
        )


def check_model_folder(src: Path) -> str:
    """The pipeline class of a diffusers folder, or ModelFolderError naming what is missing."""
    if not src.is_dir():
        raise ModelFolderError(f"{src}: not a folder")
    index = src / "model_index.json"
    try:
        spec = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(
            f"{src}: no model_index.json (not a diffusers model folder)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"{index}: unreadable ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("_class_name"), str):
        raise ModelFolderError(f"{index}: no _class_name")
    # Components are the [library, class] entries; [null, null] marks an optional one left out.
    for name, value in spec.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        if value[0] is not None and not (src / name).is_dir():
            raise ModelFolderError(f"{src}: model_index.json names {name!r}, no such subfolder")
    return str(spec["_class_name"])


def _files(root: Path) -> dict[str, int]:
    """Relative path -> size of every file under root (links followed, no upload marker)."""
    out = {}
    for folder, _dirs, names in os.walk(root, followlinks=True):
        for name in names:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if rel != UPLOAD_MARKER:
                out[rel] = path.stat().st_size
    return out


def _make_readable(root: Path) -> None:
    for folder, _dirs, names in os.walk(root):
        os.chmod(folder, 0o755)
        for name in names:
            os.chmod(Path(folder, name), 0o644)


def wait_for_upload(src: Path, timeout: float, poll: float = 1.0) -> None:
    """Block until ``src/.upload-complete`` exists (the uploader writes it last)."""
    deadline = time.monotonic() + timeout
    marker = src / UPLOAD_MARKER
    print(f"waiting up to {timeout:.0f} s for {marker}", file=sys.stderr, flush=True)
    while not marker.exists():
        if time.monotonic() > deadline:
            raise ModelFolderError(f"{marker} did not appear within {timeout:.0f} s")
        time.sleep(poll)


def install_model(src: Path, dest: Path, *, replace: bool = False, move: bool = False) -> Installed:
    """Copy (or, with ``move``, rename when on the same filesystem) SRC to DEST atomically."""
    start = time.monotonic()
    pipeline = check_model_folder(src)
    if dest.exists() and not replace:
        raise ModelFolderError(f"{dest} already exists (--replace to overwrite it)")
    if not dest.parent.is_dir():
        raise ModelFolderError(f"{dest.parent}: no such folder (is the volume mounted?)")
    wanted = _files(src)
    staging = dest.with_name(f".{dest.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        if move and src.stat().st_dev == dest.parent.stat().st_dev:
            src.rename(staging)
            (staging / UPLOAD_MARKER).unlink(missing_ok=True)
        else:
            shutil.copytree(src, staging, ignore=shutil.ignore_patterns(UPLOAD_MARKER))
        got = _files(staging)
        differing = sorted(k for k in wanted.keys() | got.keys() if wanted.get(k) != got.get(k))
        if differing:
            raise ModelFolderError(f"the copy differs from {src} in {differing[:5]}")
        _make_readable(staging)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
            dest.rename(old)
            staging.rename(dest)
            shutil.rmtree(old)
        else:
            staging.rename(dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return Installed(dest, pipeline, len(wanted), sum(wanted.values()), time.monotonic() - start)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "load-model",
        help="copy a local diffusers model folder into the worker's model volume",
        description="Check a diffusers pipeline folder and install it at DEST atomically "
        "(copy beside it, compare, rename). Prints a JSON line: dest, pipeline, files, bytes.",
    )
    parser.add_argument("src", help="the model folder (model_index.json + component subfolders)")
    parser.add_argument("dest", help="where the worker will read it, e.g. /models/sd")
    parser.add_argument("--replace", action="store_true", help="overwrite an existing DEST")
    parser.add_argument(
        "--move",
        action="store_true",
        help="rename SRC instead of copying when it is on the same filesystem (an upload area "
        "on the volume itself)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help=f"first wait until SRC/{UPLOAD_MARKER} exists (an upload with kubectl cp is done)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    src, dest = Path(args.src), Path(args.dest)
    try:
        if args.wait is not None:
            wait_for_upload(src, args.wait)
        installed = install_model(src, dest, replace=args.replace, move=args.move)
    except (ModelFolderError, OSError) as exc:
        print(f"sigmaserve load-model: {exc}", file=sys.stderr)
        return 2
    print(installed.as_json())
    return 0
