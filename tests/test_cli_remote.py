"""``schedule``, ``sample`` and ``explain`` with ``--target``: the same output as the local library,
byte for byte, from a real ``sigmaserve serve`` process (TLS and a bearer token, issue 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import pytest
from conftest import free_port


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sigmaserve", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


class Server:
    """``sigmaserve serve`` with TLS and a token file, in a subprocess."""

    def __init__(self, certs: Path, token_file: Path, port: int) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sigmaserve",
                "serve",
                "--port",
                str(port),
                "--tls-cert",
                str(certs / "server.pem"),
                "--tls-key",
                str(certs / "server.key"),
                "--token-file",
                str(token_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.target = f"localhost:{port}"
        credentials = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes())
        with grpc.secure_channel(self.target, credentials) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.seek(0)
        text = self.log.read().decode(errors="replace")
        self.log.close()
        return text


@pytest.fixture(scope="module")
def remote(certs, tmp_path_factory) -> list[str]:
    """The ``--target`` flags of a running server."""
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text("cli-s3cret\n")
    server = Server(certs, token_file, free_port())
    yield [
        "--target",
        server.target,
        "--tls-ca",
        str(certs / "ca.pem"),
        "--token-file",
        str(token_file),
    ]
    log = server.stop()
    assert "Traceback" not in log, log[-3000:]


CASES = [
    ["schedule", "EulerDiscreteScheduler", "--steps", "20"],
    ["schedule", "DPMSolverMultistepScheduler", "--steps", "12", "--set", "use_karras_sigmas=true",
     "--format", "json"],
    ["schedule", "comfyui:karras", "--steps", "10", "--format", "csv", "--compare", "DDIMScheduler",
     "a1111:karras"],
    ["schedule", "FlowMatchEulerDiscreteScheduler", "--preset", "sd3", "--steps", "8"],
    ["schedule", "PNDMScheduler", "--steps", "10", "--set", "use_karras_sigmas=true"],
    ["schedule", "EulerDiscreteScheduler", "--preset", "none", "--steps", "5", "--format", "json"],
    ["explain", "--preset", "sd15", "--seed", "3"],
    ["explain", "--preset", "sdxl", "--scheduler", "DDIMScheduler", "--steps", "30"],
    ["explain", "--preset", "flux-dev", "--steps", "8", "--width", "768"],
    ["explain", "--preset", "sd3", "--steps", "12"],
    ["explain", "--preset", "ltx-video", "--steps", "6", "--num-frames", "49"],
    ["schedule", "FlowMatchEulerDiscreteScheduler", "--preset", "flux-dev", "--width", "512",
     "--height", "768", "--steps", "5"],
    ["schedule", "FlowMatchEulerDiscreteScheduler", "--preset", "sd3", "--steps", "6", "--bare"],
    ["schedule", "UniPCMultistepScheduler", "--preset", "wan2.1", "--num-frames", "33", "--steps",
     "7", "--format", "json"],
    ["list", "--format", "json", "--excluded"],
    ["list", "presets", "--family", "flow_match"],
]  # fmt: skip


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(c[:2]) for c in CASES])
def test_target_prints_what_the_library_prints(argv, remote):
    local = run(*argv)
    assert local.returncode == 0, local.stderr[-3000:]
    served = run(*argv, *remote)
    assert served.returncode == 0, served.stderr[-3000:]
    assert served.stdout == local.stdout
    assert served.stderr == local.stderr


def test_target_draws_the_same_pictures(remote, tmp_path):
    for argv in (
        ["explain", "--preset", "sd15", "--plot"],
        ["schedule", "EulerDiscreteScheduler", "--steps", "9", "--compare", "comfyui:karras",
         "DDIMScheduler", "--plot"],
    ):  # fmt: skip
        local, served = tmp_path / "local.png", tmp_path / "served.png"
        assert run(*argv, str(local)).returncode == 0
        assert run(*argv, str(served), *remote).returncode == 0
        assert served.read_bytes() == local.read_bytes()


@pytest.mark.parametrize(
    "options",
    [
        ["--width", "64", "--height", "48", "--dtype", "float16", "--scheduler",
         "EulerDiscreteScheduler", "--steps", "20"],
        ["--preset", "wan2.1", "--width", "64", "--height", "32", "--num-frames", "9", "--source",
         "NV"],
    ],
    ids=["image", "video"],
)  # fmt: skip
def test_target_writes_the_same_shards(remote, tmp_path, options):
    argv = ["sample", "--seeds", "0-4,-7", "--shard-size", "4", *options, "--no-progress",
            "--out"]  # fmt: skip
    local = run(*argv, str(tmp_path / "local" / "lat.safetensors"))
    served = run(*argv, str(tmp_path / "served" / "lat.safetensors"), *remote)
    assert local.returncode == served.returncode == 0, served.stderr[-3000:]
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "served").iterdir())
    assert len(names) == 3  # two shards and the manifest
    for name in names:
        assert _parts(tmp_path / "served" / name) == _parts(tmp_path / "local" / name), name


def _parts(path: Path) -> tuple[object, bytes]:
    """A file's content: a safetensors file as its header (parsed: the metadata's key order
    varies between processes) and its tensor bytes."""
    data = path.read_bytes()
    if path.suffix != ".safetensors":
        return None, data
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def test_target_mistakes_are_the_librarys_one_line(remote):
    for argv in (
        ["schedule", "Eulr"],
        ["schedule", "EulerDiscreteScheduler", "--preset", "sd1.6"],
        ["explain", "--preset", "sdx"],
    ):
        local, served = run(*argv), run(*argv, *remote)
        assert local.returncode == served.returncode == 2
        assert served.stderr == local.stderr
        assert len(served.stderr.strip().splitlines()) == 1


def test_target_connection_problems_are_one_line(remote, tmp_path):
    target, ca = remote[1], remote[3]
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    for flags, expected, status in (
        (["--target", target, "--tls-ca", ca, "--token-file", str(wrong)], "UNAUTHENTICATED", 1),
        (["--target", target, "--tls-ca", ca], "UNAUTHENTICATED", 1),
        (["--target", target], "UNAVAILABLE", 1),  # plaintext to a TLS port
        (["--target", target, "--tls-ca", str(tmp_path / "missing.pem")], "missing.pem", 2),
        (["--target", target, "--tls-cert", ca], "--tls-key", 2),
    ):
        proc = run("schedule", "EulerDiscreteScheduler", "--steps", "3", *flags, "--token", "t")
        assert proc.returncode == status, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr
