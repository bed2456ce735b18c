"""`sigmaserve load-model`: a local diffusers folder into the worker's model volume, checked and
atomic; the copy loads in diffusers and generates the same image as the original."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from test_worker_helpers import sigmaserve_argv

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import sigmaserve  # noqa: E402
from sigmaserve.worker.engine import Worker  # noqa: E402
from sigmaserve.worker.loader import UPLOAD_MARKER  # noqa: E402
from sigmaserve.worker.tiny import IMAGE_SIZE, write_tiny_pipeline  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_pipeline(tmp_path_factory.mktemp("host") / "tiny")


def load_model(*args: str) -> subprocess.CompletedProcess[str]:
    argv = sigmaserve_argv(["load-model", *args])
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def png(model: Path) -> bytes:
    """The image's pixels (its PNG's parameters name the model folder, which differs)."""
    worker = Worker.from_model(model, sigmaserve, device="cpu")
    kwargs = {"seeds": [3], "num_inference_steps": 2, "width": IMAGE_SIZE, "height": IMAGE_SIZE}
    return worker.generate("a boat", **kwargs).images[0].tobytes()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_copy_loads_and_generates_like_the_original(tiny: Path, tmp_path: Path) -> None:
    volume = tmp_path / "models"
    volume.mkdir()
    result = load_model(str(tiny), str(volume / "sd"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["pipeline"] == "StableDiffusionPipeline" and report["dest"] == str(volume / "sd")
    assert report["files"] == len(tree(tiny)) and report["bytes"] > 0
    assert tree(volume / "sd") == tree(tiny)
    assert sorted(p.name for p in volume.iterdir()) == ["sd"]  # no staging folder left
    assert png(volume / "sd") == png(tiny)


def test_refuses_what_is_not_a_diffusers_folder(tiny: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = load_model(str(empty), str(tmp_path / "sd"))
    assert result.returncode == 2 and "model_index.json" in result.stderr
    partial = tmp_path / "partial"
    shutil.copytree(tiny, partial)
    shutil.rmtree(partial / "unet")
    result = load_model(str(partial), str(tmp_path / "sd"))
    assert result.returncode == 2 and "'unet'" in result.stderr
    assert not (tmp_path / "sd").exists()
    missing_volume = load_model(str(tiny), str(tmp_path / "not-mounted" / "sd"))
    assert missing_volume.returncode == 2 and "is the volume mounted" in missing_volume.stderr


def test_replace_swaps_the_model_and_leaves_no_staging(tiny: Path, tmp_path: Path) -> None:
    dest = tmp_path / "sd"
    assert load_model(str(tiny), str(dest)).returncode == 0
    (dest / "stale.txt").write_text("from the old model")
    again = load_model(str(tiny), str(dest))
    assert again.returncode == 2 and "--replace" in again.stderr
    assert load_model("--replace", str(tiny), str(dest)).returncode == 0
    assert tree(dest) == tree(tiny)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sd"]


def test_links_are_followed_and_files_made_readable(tiny: Path, tmp_path: Path) -> None:
    """A Hugging Face cache snapshot: every file a link into blobs/, some not world-readable."""
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshot"
    for path in tiny.rglob("*"):
        if path.is_file():
            blob = blobs / path.relative_to(tiny).as_posix().replace("/", "--")
            blob.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, blob)
            blob.chmod(0o600)
            link = snapshot / path.relative_to(tiny)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    dest = tmp_path / "volume" / "sd"
    dest.parent.mkdir()
    assert load_model(str(snapshot), str(dest)).returncode == 0
    assert tree(dest) == tree(tiny)
    for path in dest.rglob("*"):
        assert not path.is_symlink()
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644)


def test_wait_for_an_upload_then_move_it_into_place(tiny: Path, tmp_path: Path) -> None:
    """The Kubernetes loader Job: wait for `kubectl cp` + the marker, then rename."""
    volume = tmp_path / "models"
    incoming = volume / ".incoming" / "sd"
    volume.mkdir()

    def upload() -> None:
        time.sleep(1.5)  # the loader is already waiting
        shutil.copytree(tiny, incoming)
        (incoming / UPLOAD_MARKER).touch()

    uploader = threading.Thread(target=upload)
    uploader.start()
    result = load_model("--wait", "60", "--move", str(incoming), str(volume / "sd"))
    uploader.join()
    assert result.returncode == 0, result.stderr
    assert "waiting up to 60 s" in result.stderr
    assert tree(volume / "sd") == tree(tiny)  # the marker is not part of the model
    assert not incoming.exists()
    late = load_model("--wait", "0.5", str(tmp_path / "never"), str(volume / "other"))
    assert late.returncode == 2 and "did not appear" in late.stderr
