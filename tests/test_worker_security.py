"""The worker behind and in front of auth: bearer tokens and (mutual) TLS towards the noise service
and on the worker's own port, through the real `sigmaserve worker` / `generate` commands."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import sigmaserve  # noqa: E402
from sigmaserve.server import ServerConfig, server_in_thread  # noqa: E402
from sigmaserve.server.auth import server_credentials  # noqa: E402
from sigmaserve.worker.engine import Worker  # noqa: E402
from sigmaserve.worker.service import WorkerClient, worker_in_thread  # noqa: E402
from sigmaserve.worker.tiny import IMAGE_SIZE, write_tiny_pipeline  # noqa: E402
from test_worker_helpers import (  # noqa: E402
    HEALTHCHECK,
    free_port,
    health_ok,
    output_of,
    running,
    sigmaserve_argv,
    write_test_certs,
)

NOISE_TOKEN = "noise-secret"
WORKER_TOKEN = "worker-secret"
GENERATE = ["--prompt", "a boat", "--seed", "4", "--steps", "2"]
GENERATE += ["--width", str(IMAGE_SIZE), "--height", str(IMAGE_SIZE), "--json"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def secured_noise(certs: Path) -> Iterator[str]:
    """A noise service that wants a token and a client certificate (mutual TLS)."""
    config = ServerConfig(
        port=0,
        token=NOISE_TOKEN,
        tls_cert=str(certs / "server.pem"),
        tls_key=str(certs / "server.key"),
        tls_client_ca=str(certs / "ca.pem"),
    )
    with server_in_thread(config) as running_server:
        yield f"127.0.0.1:{running_server.port}"


def noise_client(target: str, certs: Path, token: str | None = NOISE_TOKEN) -> sigmaserve.Client:
    return sigmaserve.Client(
        target,
        token=token,
        root_certificates=str(certs / "ca.pem"),
        private_key=str(certs / "client.key"),
        certificate_chain=str(certs / "client.pem"),
        timeout=60,
    )


def files(tmp_path: Path, **tokens: str) -> dict[str, Path]:
    out = {}
    for name, value in tokens.items():
        out[name] = tmp_path / f"{name}.token"
        out[name].write_text(value + "\n")  # a trailing newline, as `echo` writes it
    return out


def test_worker_service_token_and_tls(secured_noise: str, certs: Path, tiny: Path) -> None:
    """In-thread: the worker's port wants a token and serves TLS; the worker's noise client
    carries the noise service's token and client certificate."""
    worker = Worker.from_model(tiny, noise_client(secured_noise, certs), device="cpu")
    tls = server_credentials(
        ServerConfig(tls_cert=str(certs / "server.pem"), tls_key=str(certs / "server.key"))
    )
    with worker_in_thread(worker, token=WORKER_TOKEN, credentials=tls) as running_worker:
        target = f"127.0.0.1:{running_worker.port}"
        ca = str(certs / "ca.pem")
        kwargs: dict[str, Any] = {"seeds": [1], "num_inference_steps": 2}
        kwargs.update(width=IMAGE_SIZE, height=IMAGE_SIZE)
        with WorkerClient(target, token=WORKER_TOKEN, root_certificates=ca) as client:
            reply = client.generate("a boat", **kwargs)
        assert reply.images[0].png.startswith(b"\x89PNG")
        for token, credentials, code in (
            (None, {"root_certificates": ca}, grpc.StatusCode.UNAUTHENTICATED),
            ("wrong", {"root_certificates": ca}, grpc.StatusCode.UNAUTHENTICATED),
            (WORKER_TOKEN, {}, grpc.StatusCode.UNAVAILABLE),  # plaintext to a TLS port
        ):
            with (
                WorkerClient(target, token=token, timeout=10, **credentials) as client,
                pytest.raises(sigmaserve.RemoteError) as info,
            ):
                client.generate("a boat", **kwargs)
            assert info.value.code == code, (token, credentials)
        # Health stays open without a token (compose healthchecks, Kubernetes probes).
        probe = [sys.executable, str(HEALTHCHECK), "--addr", target, "--tls-ca", ca]
        result = subprocess.run(
            [*probe, "--service", "sigmaserve.v1.WorkerService"], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        plain = subprocess.run(
            [sys.executable, str(HEALTHCHECK), "--addr", target, "--timeout", "1"],
            capture_output=True,
            text=True,
        )
        assert plain.returncode == 2


def test_worker_with_wrong_noise_credentials_says_so(secured_noise: str, certs: Path, tiny: Path):
    worker = Worker.from_model(tiny, noise_client(secured_noise, certs, "wrong"), device="cpu")
    with (
        worker_in_thread(worker) as running_worker,
        WorkerClient(f"127.0.0.1:{running_worker.port}", timeout=30) as client,
        pytest.raises(sigmaserve.RemoteError) as info,
    ):
        client.generate("a boat", seeds=[1], num_inference_steps=1)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "--noise-token-file" in str(info.value)


def test_worker_and_generate_commands_with_tokens_and_tls(
    secured_noise: str, certs: Path, tiny: Path, tmp_path: Path
) -> None:
    """The commands as compose runs them: token files (secrets), mutual TLS to the noise service,
    TLS and a token on the worker's port."""
    tokens = files(tmp_path, noise=NOISE_TOKEN, worker=WORKER_TOKEN, wrong="nope")
    port = free_port()
    worker_argv = sigmaserve_argv(
        [
            "worker", "--model", str(tiny), "--device", "cpu", "--port", str(port),
            "--noise", secured_noise, "--noise-token-file", str(tokens["noise"]),
            "--noise-tls-ca", str(certs / "ca.pem"), "--noise-tls-cert", str(certs / "client.pem"),
            "--noise-tls-key", str(certs / "client.key"),
            "--token-file", str(tokens["worker"]),
            "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
        ]
    )  # fmt: skip
    target = f"127.0.0.1:{port}"
    with running(worker_argv) as worker:
        health = health_ok(
            [sys.executable, str(HEALTHCHECK), "--addr", target, "--tls-ca", str(certs / "ca.pem")],
            timeout=180,
        )
        assert health.returncode == 0, (health.stderr, output_of(worker))

        def generate(*extra: str) -> subprocess.CompletedProcess[str]:
            argv = sigmaserve_argv(["generate", "--worker", target, *GENERATE, *extra])
            return subprocess.run(argv, capture_output=True, text=True, timeout=240)

        ca = ["--tls-ca", str(certs / "ca.pem")]
        ok = generate("--token-file", str(tokens["worker"]), *ca, "--out", str(tmp_path / "ok"))
        assert ok.returncode == 0, ok.stderr[-3000:]
        meta = json.loads(ok.stdout.strip().splitlines()[-1])
        assert Path(meta["files"][0]).read_bytes().startswith(b"\x89PNG")

        refused = generate("--token-file", str(tokens["wrong"]), *ca, "--out", str(tmp_path))
        assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr
        plaintext = generate("--token-file", str(tokens["worker"]), "--out", str(tmp_path))
        assert plaintext.returncode == 1 and "UNAVAILABLE" in plaintext.stderr


def test_generate_in_process_through_a_secured_noise_service(
    secured_noise: str, certs: Path, tiny: Path, tmp_path: Path
) -> None:
    """`generate --model --noise` (no worker) with the noise flags gives the same PNG as the
    schedule and latents computed locally."""
    tokens = files(tmp_path, noise=NOISE_TOKEN)
    argv = [
        "generate", "--model", str(tiny), "--device", "cpu", *GENERATE,
        "--noise", secured_noise, "--noise-token-file", str(tokens["noise"]),
        "--noise-tls-ca", str(certs / "ca.pem"), "--noise-tls-cert", str(certs / "client.pem"),
        "--noise-tls-key", str(certs / "client.key"), "--out", str(tmp_path / "remote"),
    ]  # fmt: skip
    result = subprocess.run(sigmaserve_argv(argv), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    (remote,) = (tmp_path / "remote").glob("*.png")
    local = Worker.from_model(tiny, sigmaserve, device="cpu").generate(
        "a boat", seeds=[4], num_inference_steps=2, width=IMAGE_SIZE, height=IMAGE_SIZE
    )
    assert remote.read_bytes() == local.png_bytes()[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "{certs}/server.pem"], "--tls-key"),
        (["--tls-cert", "{certs}/server.pem", "--tls-key", "{certs}/missing.key"], "missing.key"),
        (["--token-file", "{tmp}/missing"], "--token-file"),
        (["--token-file", "{tmp}/empty"], "is empty"),
        (["--noise", "x:1", "--noise-tls-cert", "{certs}/client.pem"], "--noise-tls-key"),
        (["--noise", "x:1", "--noise-tls-ca", "{tmp}/missing"], "--noise-tls-ca"),
        (["--noise", "x:1", "--noise-token-file", "{tmp}/missing"], "--noise-token-file"),
    ],
)
def test_bad_security_options_fail_fast_with_the_flag_named(
    args: list[str],
    message: str,
    certs: Path,
    tmp_path: Path,
    tiny: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A one-line error naming the flag, exit status 2, before the model is loaded."""
    from sigmaserve.cli import main

    (tmp_path / "empty").write_text("\n")
    filled = [a.format(certs=certs, tmp=tmp_path) for a in args]
    assert main(["worker", "--model", str(tiny), "--device", "cpu", *filled]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
