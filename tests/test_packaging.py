"""What `pip install sigmaserve` brings: the library, the server and the client without torch;
extras bring torch, the worker and plots. `make run` installs requirements-serve.txt only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from test_worker_helpers import ROOT

HEAVY = ("torch", "diffusers", "transformers", "matplotlib", "PIL", "safetensors", "scipy")


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r"):
            name, version = line.split("==")
            out[name.lower()] = version
    return out


def test_base_install_has_no_torch_and_extras_bring_it() -> None:
    meta = project()
    base = names(meta["dependencies"])
    assert not base & {"torch", "diffusers", "transformers", "matplotlib", "pillow"}
    extras = {k: names(v) for k, v in meta["optional-dependencies"].items()}
    assert extras["torch"] == {"torch"}
    assert {"torch", "diffusers", "transformers", "safetensors", "pillow"} <= extras["worker"]
    assert "matplotlib" in extras["plot"]
    assert "prometheus-client" in extras["metrics"]


def test_make_run_pins_exactly_what_serving_needs() -> None:
    """requirements-serve.txt: every base dependency, pinned inside its range, plus metrics."""
    serve = pins(ROOT / "requirements-serve.txt")
    meta = project()
    wanted = [*meta["dependencies"], *meta["optional-dependencies"]["metrics"]]
    assert set(serve) == names(wanted)
    for text in wanted:
        requirement = Requirement(text)
        assert requirement.specifier.contains(serve[requirement.name.lower()]), text
    makefile = (ROOT / "Makefile").read_text()
    run = re.search(r"^\$\(SERVE_STAMP\):.*?(?=^\S)", makefile, re.MULTILINE | re.DOTALL)
    assert run and "requirements-serve.txt" in run.group(0)
    assert "requirements-dev.txt" not in run.group(0)


BLOCK_HEAVY = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ImportError(f"{{name}} is not installed (blocked)")
sys.meta_path.insert(0, Block())
"""

SERVE_AND_CALL = """
import sigmaserve
from sigmaserve.server import ServerConfig, server_in_thread
with server_in_thread(ServerConfig(port=0)) as running:
    with sigmaserve.Client(f"127.0.0.1:{running.port}") as client:
        lat = client.sample_init_latents(width=64, height=64, seeds=[1, 2], batch_size=2)
        s = client.get_schedule("EulerDiscreteScheduler", 10, preset="sd15")
assert (lat.array == sigmaserve.sample_init_latents(width=64, height=64, seeds=[1, 2],
        batch_size=2).array).all()
print("served", lat.shape, round(s.init_noise_sigma, 4))
from sigmaserve.cli import build_parser
build_parser().parse_args(["serve", "--port", "0"])
build_parser().parse_args(["worker", "--model", "/m"])  # the command exists; torch loads on use
"""


def test_library_server_and_client_run_without_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_HEAVY + SERVE_AND_CALL],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("served (2, 4, 8, 8) 14.6")
