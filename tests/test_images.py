"""The Dockerfiles: multi-stage, non-root, gRPC health checks, and their commands really serve.

No Docker engine runs here: the files are checked statically (stages, users, COPY sources,
HEALTHCHECK) and each image's ENTRYPOINT + CMD runs directly, then its HEALTHCHECK command must
answer SERVING.
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

SERVER = ROOT / "docker" / "Dockerfile.server"
WORKER = ROOT / "docker" / "Dockerfile.worker"


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


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for op, args in instructions(path):
        if op == "FROM":
            result.append([])
        if result:
            result[-1].append((op, args))
    return result


def exec_form(path: Path, op: str) -> list[str]:
    (args,) = [a for o, a in stages(path)[-1] if o == op]
    return list(json.loads(args))


def healthcheck(path: Path) -> list[str]:
    (args,) = [a for o, a in stages(path)[-1] if o == "HEALTHCHECK"]
    options, _, command = args.partition("CMD ")
    assert "--start-period" in options and "--timeout" in options
    return list(json.loads(command))


@pytest.mark.parametrize("path", [SERVER, WORKER], ids=["server", "worker"])
def test_dockerfile_structure(path: Path) -> None:
    all_stages = stages(path)
    assert len(all_stages) >= 2, "multi-stage: build the wheel, then a runtime"
    build, runtime = all_stages[0], all_stages[-1]
    assert any(op == "RUN" and "maturin build" in args for op, args in build)
    assert any(op == "COPY" and "--from=build" in args and ".whl" in args for op, args in runtime)
    (user,) = [args for op, args in runtime if op == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert exec_form(path, "ENTRYPOINT") == ["sigmaserve"]
    check = healthcheck(path)
    assert check[:2] == ["python", "/usr/local/bin/grpc-healthcheck"]
    # Every COPY source from the build context exists.
    for op, args in instructions(path):
        if op == "COPY" and "--from" not in args:
            for source in shlex.split(args)[:-1]:
                assert (ROOT / source).exists(), source


def test_worker_image_is_on_a_cuda_runtime() -> None:
    text = WORKER.read_text()
    assert re.search(r"ARG CUDA_IMAGE=nvidia/cuda:[\w.]+-runtime-", text)
    assert stages(WORKER)[-1][0] == ("FROM", "${CUDA_IMAGE} AS runtime")
    assert "download.pytorch.org/whl/cu" in text


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "target"):
        assert entry in ignored


def test_server_image_command_answers_its_health_check() -> None:
    port = free_port()
    mapping = {"0.0.0.0": "127.0.0.1", "50051": str(port), "127.0.0.1:50051": f"127.0.0.1:{port}"}
    command = [*exec_form(SERVER, "ENTRYPOINT"), *exec_form(SERVER, "CMD")]
    assert command == ["sigmaserve", "serve", "--host", "0.0.0.0", "--port", "50051"]
    with running(image_argv(replace_values(command, mapping))) as proc:
        result = health_ok(image_argv(replace_values(healthcheck(SERVER), mapping)), timeout=60)
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
    command = [*exec_form(WORKER, "ENTRYPOINT"), *exec_form(WORKER, "CMD")]
    with running(image_argv(noise)), running(image_argv(replace_values(command, mapping))) as proc:
        # The image's CMD picks CUDA when present; here it runs on the CPU.
        result = health_ok(image_argv(replace_values(healthcheck(WORKER), mapping)), timeout=180)
        assert result.returncode == 0, (result.stderr, output_of(proc))
