"""docker/Dockerfile: its structure, and each target's command really serves.

The images themselves are built and run by `make test-stack` (a real Docker engine; CI runs it
after `make test`). Here, without Docker: the file is read (stages, users, sources, pins, no
toolchain piped from the network) and each target's ENTRYPOINT + CMD runs directly, then its
HEALTHCHECK command must answer SERVING.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from test_worker_helpers import (
    ROOT,
    free_port,
    health_ok,
    image_argv,
    output_of,
    replace_values,
    running,
)

DOCKERFILE = ROOT / "docker" / "Dockerfile"
REQUIREMENTS = ("requirements-serve.txt", "requirements-worker.txt", "requirements-build.txt")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(path: Path = DOCKERFILE) -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions (FROM first)."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for op, args in instructions(path):
        if op == "FROM":
            name = args.split(" AS ")[-1].strip() if " AS " in args else str(len(result))
            current = result[name] = []
        if current is not None:
            current.append((op, args))
    return result


def exec_form(target: str, op: str) -> list[str]:
    (args,) = [a for o, a in stages()[target] if o == op]
    return list(json.loads(args))


def healthcheck(target: str) -> list[str]:
    (args,) = [a for o, a in stages()[target] if o == "HEALTHCHECK"]
    options, _, command = args.partition("CMD ")
    assert "--start-period" in options and "--timeout" in options
    return list(json.loads(command))


def test_targets_build_from_one_wheel_stage_on_a_swappable_base() -> None:
    all_stages = stages()
    assert {"wheel", "runtime", "noise", "worker"} <= set(all_stages)
    # The public base by default (what users pull); `make test-stack` swaps it with --build-arg.
    (default,) = [a for o, a in instructions(DOCKERFILE) if o == "ARG" and "BASE_IMAGE" in a]
    assert re.fullmatch(r"BASE_IMAGE=python:3\.11\.\d+-slim-bookworm", default)
    for name in ("wheel", "runtime"):
        assert all_stages[name][0] == ("FROM", f"${{BASE_IMAGE}} AS {name}")
    assert all_stages["noise"][0] == ("FROM", "runtime AS noise")
    assert all_stages["worker"][0] == ("FROM", "runtime AS worker")
    wheel = " ".join(a for _, a in all_stages["wheel"])
    assert "maturin build --release --locked" in wheel
    # The Rust toolchain from Debian's packages, nothing piped from the network into a shell.
    assert "rustc-web cargo-web" in wheel
    text = DOCKERFILE.read_text()
    assert not re.search(r"curl|wget|\|\s*sh\b|rustup", text)
    # No `# syntax=` line: that pulls a frontend image, impossible without a registry.
    assert not re.search(r"^#\s*syntax=", text, re.MULTILINE)
    for target in ("noise", "worker"):
        body = " ".join(a for _, a in all_stages[target])
        assert "from=wheel,source=/dist" in body and "sigmaserve-*.whl" in body
        assert "pip check" in body


@pytest.mark.parametrize("target", ["noise", "worker"])
def test_runtime_targets_are_non_root_and_probe_health(target: str) -> None:
    ops = stages()[target]
    (user,) = [args for op, args in ops if op == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert exec_form(target, "ENTRYPOINT") == ["sigmaserve"]
    assert healthcheck(target)[:2] == ["python", "/usr/local/bin/grpc-healthcheck"]


def test_sources_exist_and_the_ca_bundle_is_only_ever_a_secret() -> None:
    for op, args in instructions(DOCKERFILE):
        if op == "COPY" and "--from" not in args:
            for source in shlex.split(args)[:-1]:
                assert (ROOT / source).exists(), source
        for mount in re.findall(r"--mount=(\S+)", args):
            fields = dict(kv.split("=", 1) for kv in mount.split(","))
            if fields["type"] == "bind" and "from" not in fields:
                assert (ROOT / fields["source"]).exists(), fields["source"]
            if fields["type"] == "secret":
                assert fields["id"] == "ca_bundle"
    assert "PIP_CERT" not in " ".join(a for o, a in instructions(DOCKERFILE) if o == "ENV")


def test_python_dependencies_are_pinned() -> None:
    for name in REQUIREMENTS:
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r "):
                assert re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", line), f"{name}: {line}"
    # The dev environment installs the same pins (the stack test compares images made in the
    # container with the same generation run from .venv).
    assert "-r requirements-worker.txt" in (ROOT / "requirements-dev.txt").read_text()


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "target", "build", "secrets"):
        assert entry in ignored


def test_noise_image_command_answers_its_health_check() -> None:
    port = free_port()
    mapping = {"0.0.0.0": "127.0.0.1", "50051": str(port), "127.0.0.1:50051": f"127.0.0.1:{port}"}
    command = [*exec_form("noise", "ENTRYPOINT"), *exec_form("noise", "CMD")]
    assert command == ["sigmaserve", "serve", "--host", "0.0.0.0", "--port", "50051"]
    with running(image_argv(replace_values(command, mapping))) as proc:
        result = health_ok(image_argv(replace_values(healthcheck("noise"), mapping)), timeout=60)
        assert result.returncode == 0, (result.stderr, output_of(proc))


def test_worker_image_command_answers_its_health_check(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from sigmaserve.worker.tiny import write_tiny_pipeline

    model = write_tiny_pipeline(tmp_path / "sd")
    noise_port, port = free_port(), free_port()
    mapping = {
        "0.0.0.0": "127.0.0.1",
        "50052": str(port),
        "127.0.0.1:50052": f"127.0.0.1:{port}",
        "/models/sd": str(model),
        "dns:///noise:50051": f"dns:///127.0.0.1:{noise_port}",
    }
    noise = ["sigmaserve", "serve", "--host", "127.0.0.1", "--port", str(noise_port)]
    command = [*exec_form("worker", "ENTRYPOINT"), *exec_form("worker", "CMD")]
    with running(image_argv(noise)), running(image_argv(replace_values(command, mapping))) as proc:
        # The image's CMD picks CUDA when present; here it runs on the CPU.
        result = health_ok(image_argv(replace_values(healthcheck("worker"), mapping)), timeout=180)
        assert result.returncode == 0, (result.stderr, output_of(proc))
