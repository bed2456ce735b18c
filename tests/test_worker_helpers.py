"""Helpers shared by the worker, compose and image tests: run a container's command directly.

(No tests here; the module name only keeps it among the worker's test files.)
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEALTHCHECK = ROOT / "docker" / "healthcheck.py"
IMAGE_HEALTHCHECK = "/usr/local/bin/grpc-healthcheck"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main_cli_has(command: str) -> bool:
    """Whether ``sigmaserve <command>`` is wired into the main CLI yet."""
    from sigmaserve.cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            return command in action.choices
    return False


def sigmaserve_argv(args: Sequence[str]) -> list[str]:
    """argv for ``sigmaserve ARGS`` run from this interpreter (the image's ENTRYPOINT).

    ``generate`` and ``worker`` go through ``python -m sigmaserve.worker`` (the same
    ``register()``d parser) until the main CLI registers them.
    """
    args = list(args)
    if args and args[0] in ("generate", "worker") and not main_cli_has(args[0]):
        return [sys.executable, "-m", "sigmaserve.worker", *args]
    return [sys.executable, "-m", "sigmaserve", *args]


def image_argv(argv: Sequence[str]) -> list[str]:
    """An image's exec-form command with this machine's paths (python, the health probe)."""
    out = [str(HEALTHCHECK) if a == IMAGE_HEALTHCHECK else a for a in argv]
    if out and out[0] == "sigmaserve":
        return sigmaserve_argv(out[1:])
    if out and out[0] in ("python", "python3"):
        return [sys.executable, *out[1:]]
    return out


def replace_values(argv: Sequence[str], mapping: dict[str, str]) -> list[str]:
    """Substitute whole arguments or ``--flag=value`` values."""
    out = []
    for arg in argv:
        for old, new in mapping.items():
            if arg == old:
                arg = new
            elif arg.endswith("=" + old):
                arg = arg[: -len(old)] + new
        out.append(arg)
    return out


def health_ok(argv: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a health-check command until it exits 0 (or ``timeout``); returns the last run."""
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@contextlib.contextmanager
def running(
    argv: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A background process, terminated (SIGTERM, then SIGKILL) on exit."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def output_of(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None or proc.stdout is None:
        return ""
    return proc.stdout.read()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def write_test_certs(folder: Path) -> Path:
    """A throwaway CA (ca.pem), a server certificate for 127.0.0.1/localhost (server.pem/.key)
    and a client certificate (client.pem/.key), all signed by that CA; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *curve, "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"),
        "-days", "2", "-subj", "/CN=sigmaserve test CA",
    )  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        _openssl(
            "req", *curve, "-keyout", str(folder / f"{name}.key"),
            "-out", str(folder / f"{name}.csr"), "-subj", f"/CN=sigmaserve test {name}",
        )  # fmt: skip
        (folder / f"{name}.ext").write_text(ext + "\n")
        _openssl(
            "x509", "-req", "-in", str(folder / f"{name}.csr"), "-CA", str(folder / "ca.pem"),
            "-CAkey", str(folder / "ca.key"), "-CAcreateserial",
            "-out", str(folder / f"{name}.pem"), "-days", "2",
            "-extfile", str(folder / f"{name}.ext"),
        )  # fmt: skip
    return folder
